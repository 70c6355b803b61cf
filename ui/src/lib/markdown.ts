// The answer renderer's rules, apart from React: the sanitising schema, raw
// HTML turned into visible text, and LaTeX delimiters that remark-math does
// not read. Sanitising runs on the Markdown's own HTML before KaTeX and
// highlight.js add their (trusted) markup, as rehype-sanitize recommends: the
// schema only has to keep the classes those two plugins look for.

import { defaultSchema, type Options as SanitizeSchema } from 'rehype-sanitize';

export const sanitizeSchema: SanitizeSchema = {
  ...defaultSchema,
  attributes: {
    ...defaultSchema.attributes,
    // language-* for highlighting, math-* for KaTeX (remark-math's output).
    code: [['className', /^language-./, 'math-inline', 'math-display']],
  },
};

interface MdNode {
  type: string;
  value?: string;
  children?: MdNode[];
}

const FLOW_PARENTS = new Set(['root', 'blockquote', 'listItem', 'footnoteDefinition']);

/** A remark plugin: raw HTML in Markdown becomes text, so `<script>` is shown, never run or silently dropped. */
export function remarkHtmlAsText() {
  const walk = (node: MdNode) => {
    const kids = node.children;
    if (!kids) return;
    for (let i = 0; i < kids.length; i++) {
      const k = kids[i]!;
      if (k.type === 'html') {
        const text: MdNode = { type: 'text', value: k.value ?? '' };
        kids[i] = FLOW_PARENTS.has(node.type) ? { type: 'paragraph', children: [text] } : text;
      } else {
        walk(k);
      }
    }
  };
  return (tree: MdNode) => walk(tree);
}

/** The text inside a hast node (a code block's source, for its Copy button). */
export function hastText(node: MdNode | undefined): string {
  if (!node) return '';
  if (node.type === 'text') return node.value ?? '';
  return (node.children ?? []).map(hastText).join('');
}

/** `\( … \)` and `\[ … \]` (common in model output) become remark-math's
 * `$$ … $$`; a `\[ … \]` on lines of its own becomes a display block. Code
 * spans and fenced code are left alone. Single `$` is not math here, so
 * prices like "$5 and $10" stay text. */
export function normalizeMathDelimiters(src: string): string {
  if (!src.includes('\\(') && !src.includes('\\[')) return src;
  let out = '';
  let i = 0;
  let fence: string | null = null;
  let lineStart = true;
  while (i < src.length) {
    if (lineStart) {
      const m = /^ {0,3}(`{3,}|~{3,})/.exec(src.slice(i, i + 64));
      if (m) {
        const run = m[1]!;
        if (fence === null) fence = run;
        else if (run[0] === fence[0] && run.length >= fence.length) fence = null;
      }
    }
    if (fence !== null) {
      const nl = src.indexOf('\n', i);
      const end = nl < 0 ? src.length : nl + 1;
      out += src.slice(i, end);
      i = end;
      lineStart = true;
      continue;
    }
    const ch = src[i]!;
    if (ch === '`') {
      let n = 1;
      while (src[i + n] === '`') n++;
      const ticks = '`'.repeat(n);
      const close = src.indexOf(ticks, i + n);
      if (close > 0 && src[close + n] !== '`') {
        out += src.slice(i, close + n);
        i = close + n;
        lineStart = false;
        continue;
      }
      out += ticks;
      i += n;
      lineStart = false;
      continue;
    }
    if (ch === '\\' && (src[i + 1] === '(' || src[i + 1] === '[')) {
      const display = src[i + 1] === '[';
      const closer = display ? '\\]' : '\\)';
      const close = src.indexOf(closer, i + 2);
      const inner = close > 0 ? src.slice(i + 2, close) : '';
      // Inline math stays within a paragraph.
      if (close > 0 && inner.trim() && !/\n\s*\n/.test(inner)) {
        const lineHead = out.slice(out.lastIndexOf('\n') + 1);
        const after = src.slice(close + 2, (src.indexOf('\n', close) + 1 || src.length + 1) - 1);
        if (display && /^\s*$/.test(lineHead) && /^\s*$/.test(after)) {
          out += `$$\n${inner.trim()}\n${lineHead}$$`;
        } else {
          out += `$$${inner.trim()}$$`;
        }
        i = close + 2;
        lineStart = false;
        continue;
      }
    }
    out += ch;
    lineStart = ch === '\n';
    i++;
  }
  return out;
}

/** Whether a text may hold math (so KaTeX is worth loading for it). */
export function hasMath(text: string): boolean {
  return text.includes('$$') || text.includes('\\(') || text.includes('\\[');
}

/** Splits Markdown at blank lines outside fenced code and `$$` blocks. Each
 * block is rendered on its own, so a new token of a streaming answer
 * re-parses only the last block instead of the whole answer. */
export function splitBlocks(src: string): string[] {
  const lines = src.split('\n');
  const blocks: string[] = [];
  let cur: string[] = [];
  let fence: string | null = null;
  let math = false;
  for (const line of lines) {
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === null && !math && line.trim() === '') {
      if (cur.length) blocks.push(cur.join('\n'));
      cur = [];
      continue;
    }
    cur.push(line);
    if (f) {
      const run = f[1]!;
      if (fence === null) fence = run;
      // A closing fence is the same character, at least as long, and nothing after it.
      else if (run[0] === fence[0] && run.length >= fence.length && /^\s*[`~]+\s*$/.test(line)) fence = null;
    } else if (fence === null && line.trim() === '$$') {
      math = !math;
    }
  }
  if (cur.length) blocks.push(cur.join('\n'));
  return blocks;
}

/** Reference links and footnotes are defined in one block and used in
 * another: such an answer is rendered whole. */
export function splittable(src: string): boolean {
  return !/^ {0,3}\[[^\]]+\]:/m.test(src);
}
