import { lazy, memo, Suspense } from 'react';
import { hasMath } from '../../lib/markdown';

// The Markdown pipeline (parser, highlight.js) loads on its own, so the chat
// shell shows at once, and KaTeX only once an answer has math; until then
// the answer shows as plain text.
const Markdown = lazy(() => import('./Markdown'));
const MathMarkdown = lazy(() => import('./MathMarkdown'));

export const AnswerText = memo(function AnswerText({ text }: { text: string }) {
  const View = hasMath(text) ? MathMarkdown : Markdown;
  return (
    <Suspense fallback={<div className="md plain-text">{text}</div>}>
      <View text={text} />
    </Suspense>
  );
});
