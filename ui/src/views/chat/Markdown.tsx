// An answer as Markdown: GFM tables and lists, highlighted code with a Copy
// button (KaTeX math comes with MathMarkdown). Raw HTML shows as text (there is no rehype-raw), the
// Markdown's HTML is sanitised before KaTeX and highlight.js add their own,
// and links open in a new tab without access to this page.

import { memo, useDeferredValue, type ComponentProps } from 'react';
import ReactMarkdown, { type Components } from 'react-markdown';
import remarkGfm from 'remark-gfm';
import rehypeHighlight from 'rehype-highlight';
import rehypeSanitize from 'rehype-sanitize';
import { CopyButton } from '../../components/ui';
import { hastText, remarkHtmlAsText, sanitizeSchema } from '../../lib/markdown';

export type Plugins = NonNullable<ComponentProps<typeof ReactMarkdown>['remarkPlugins']>;

/** Math support (MathMarkdown) plugs in here; KaTeX then loads only for answers with math. */
export interface MarkdownExtra {
  remark: Plugins;
  /** Run after sanitising, before highlighting. */
  rehype: Plugins;
  prepare: (text: string) => string;
}

// rehype-highlight builds a highlighter (every common language registered,
// each grammar compiled on first use) each time it is attached, and
// react-markdown attaches its plugins on every render: once per block of
// every answer, and once per frame for the block a stream is writing. Built
// once here and shared, a render no longer pays for it (~8 ms a block).
const highlightTransform = rehypeHighlight({ detect: false, plainText: ['math', 'text', 'txt', 'plain'] });
/** The highlight plugin: attaching it returns the one shared highlighter. */
export const highlightPlugin = () => highlightTransform;
const highlight: Plugins[number] = highlightPlugin;

function pipeline(extra: MarkdownExtra | undefined): { remark: Plugins; rehype: Plugins } {
  return {
    remark: [remarkGfm, ...(extra?.remark ?? []), remarkHtmlAsText],
    rehype: [[rehypeSanitize, sanitizeSchema], ...(extra?.rehype ?? []), highlight],
  };
}
const plain = pipeline(undefined);

function languageOf(node: unknown): string | null {
  const code = (node as { children?: { tagName?: string; properties?: { className?: unknown } }[] } | undefined)?.children?.[0];
  const cls = code?.tagName === 'code' ? code.properties?.className : null;
  const list = Array.isArray(cls) ? cls : [];
  for (const c of list) if (typeof c === 'string' && c.startsWith('language-')) return c.slice('language-'.length);
  return null;
}

const components: Components = {
  a: ({ node: _node, href, children, ...rest }) => (
    <a {...rest} href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
  pre: ({ node, children }) => {
    const lang = languageOf(node);
    return (
      <div className="md-code" data-testid="code-block">
        <div className="md-code-head">
          <span className="muted small">{lang ?? 'code'}</span>
          <CopyButton text={hastText(node as Parameters<typeof hastText>[0]).replace(/\n$/, '')} testId="code-copy" />
        </div>
        <pre>{children}</pre>
      </div>
    );
  },
  // Images in an answer are not fetched (nothing leaves this machine, and a
  // remote image would tell its host you read the answer): shown as a link.
  img: ({ src, alt }) =>
    typeof src === 'string' && src ? (
      <a href={src} target="_blank" rel="noopener noreferrer" className="md-image-link">
        [image{alt ? `: ${alt}` : ''}]
      </a>
    ) : (
      <span>[image{alt ? `: ${alt}` : ''}]</span>
    ),
  table: ({ node: _node, children, ...rest }) => (
    <div className="md-table">
      <table {...rest}>{children}</table>
    </div>
  ),
};

const pipelines = new WeakMap<MarkdownExtra, { remark: Plugins; rehype: Plugins }>();

export const Markdown = memo(function Markdown({ text, extra }: { text: string; extra?: MarkdownExtra }) {
  // While a fast answer streams, React may skip intermediate texts rather
  // than parse every frame's version.
  const shown = useDeferredValue(text);
  let p = plain;
  if (extra) {
    p = pipelines.get(extra) ?? pipeline(extra);
    pipelines.set(extra, p);
  }
  return (
    <div className="md">
      <ReactMarkdown remarkPlugins={p.remark} rehypePlugins={p.rehype} components={components}>
        {extra ? extra.prepare(shown) : shown}
      </ReactMarkdown>
    </div>
  );
});

export default Markdown;
