import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { highlightPlugin, Markdown } from './Markdown';
import { MathMarkdown } from './MathMarkdown';

const render = (text: string) => renderToStaticMarkup(createElement(Markdown, { text }));
const renderMath = (text: string) => renderToStaticMarkup(createElement(MathMarkdown, { text }));

describe('Markdown (answers)', () => {
  it('shows raw HTML and scripts as text, never as elements', () => {
    const html = render('<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)> <b>b</b>');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('drops javascript: links and opens the others in a new tab without an opener', () => {
    const html = render('[a](javascript:alert(1)) [b](https://example.com)');
    expect(html).not.toContain('javascript:');
    expect(html).toContain('href="https://example.com" target="_blank" rel="noopener noreferrer"');
  });

  it('renders GFM tables, highlighted code with a Copy button, and math', () => {
    const html = renderMath('| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint("hi")\n```\n\nso \\(x^2\\) and $$y$$');
    expect(html).toContain('<table>');
    expect(html).toContain('class="hljs language-python"');
    expect(html).toContain('hljs-built_in');
    expect(html).toContain('data-testid="code-copy"');
    expect(html).toContain('class="katex"');
    expect(html).toContain('annotation encoding="application/x-tex">x^2</annotation>');
  });

  it('highlights every answer with one highlighter, built once rather than on every render', () => {
    expect(highlightPlugin()).toBe(highlightPlugin());
    for (const lang of ['ts', 'rust', 'python']) {
      expect(render(`\`\`\`${lang}\nlet x = "a";\n\`\`\``)).toContain(`class="hljs language-${lang}"`);
    }
    expect(render('```rust\nfn main() {}\n```')).toContain('hljs-keyword');
  });

  it('shows images as links instead of loading them', () => {
    const html = render('![chart](https://tracker.example/p.png)');
    expect(html).not.toContain('<img');
    expect(html).toContain('href="https://tracker.example/p.png"');
    expect(html).toContain('[image: chart]');
  });

  it('keeps dollar prices as text', () => {
    expect(renderMath('costs $5 and $10')).toContain('costs $5 and $10');
  });

  it('keeps the math answer as safe as the plain one', () => {
    const html = renderMath('$$x$$ <script>alert(1)</script> $$\\href{javascript:alert(1)}{x}$$');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('href="javascript');
  });

  it('does not let markdown smuggle classes or styles past the sanitiser', () => {
    const html = render('```js\nx\n```\n\n<span class="katex" style="color:red">x</span>');
    expect(html).not.toContain('style="color:red"');
  });
});
