import { lazy, memo, Suspense } from 'react';
import { hasMath, splitBlocks, splittable } from '../../lib/markdown';

// The Markdown pipeline (parser, highlight.js) loads on its own, so the chat
// shell shows at once, and KaTeX only once an answer has math; until then
// the answer shows as plain text.
const Markdown = lazy(() => import('./Markdown'));
const MathMarkdown = lazy(() => import('./MathMarkdown'));

/** An answer's text, rendered block by block (each block memoised): while a
 * fast model streams, only the block being written is parsed again, and the
 * end of the stream costs nothing extra. */
export const AnswerText = memo(function AnswerText({ text }: { text: string }) {
  const View = hasMath(text) ? MathMarkdown : Markdown;
  const blocks = splittable(text) ? splitBlocks(text) : [text];
  return (
    <Suspense fallback={<div className="md plain-text">{text}</div>}>
      {blocks.length > 1 ? (
        <div className="md-blocks">
          {blocks.map((b, i) => (
            <View key={i} text={b} />
          ))}
        </div>
      ) : (
        <View text={text} />
      )}
    </Suspense>
  );
});
