// Markdown with KaTeX math: `$$…$$` inline or as a block, and `\( \)` / `\[ \]`.
// A separate chunk, loaded only for answers that contain math.

import { memo } from 'react';
import remarkMath from 'remark-math';
import rehypeKatex from 'rehype-katex';
import 'katex/dist/katex.min.css';
import { normalizeMathDelimiters } from '../../lib/markdown';
import { Markdown, type MarkdownExtra } from './Markdown';

const MATH: MarkdownExtra = {
  // A single `$` is not math: answers about money say "$5 and $10".
  remark: [[remarkMath, { singleDollarTextMath: false }]],
  // KaTeX with trust off: no \href, \url or HTML extensions; errors render as text.
  rehype: [[rehypeKatex, { throwOnError: false, strict: 'ignore', trust: false }]],
  prepare: normalizeMathDelimiters,
};

export const MathMarkdown = memo(function MathMarkdown({ text }: { text: string }) {
  return <Markdown text={text} extra={MATH} />;
});

export default MathMarkdown;
