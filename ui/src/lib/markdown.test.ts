import { describe, expect, it } from 'vitest';
import { hasMath, hastText, normalizeMathDelimiters, remarkHtmlAsText } from './markdown';

describe('normalizeMathDelimiters', () => {
  it('turns \\( \\) into inline math and a \\[ \\] block into display math', () => {
    expect(normalizeMathDelimiters('so \\(x^2\\) holds')).toBe('so $$x^2$$ holds');
    expect(normalizeMathDelimiters('see\n\\[\n a+b \n\\]\nok')).toBe('see\n$$\na+b\n$$\nok');
    expect(normalizeMathDelimiters('  \\[ E=mc^2 \\]')).toBe('  $$\nE=mc^2\n  $$');
    expect(normalizeMathDelimiters('inline \\[y\\] here')).toBe('inline $$y$$ here');
  });

  it('leaves code, unclosed delimiters and plain text alone', () => {
    const code = '```latex\n\\(x\\)\n```\nand `\\(y\\)` but \\(z\\)';
    expect(normalizeMathDelimiters(code)).toBe('```latex\n\\(x\\)\n```\nand `\\(y\\)` but $$z$$');
    expect(normalizeMathDelimiters('a \\( b')).toBe('a \\( b');
    expect(normalizeMathDelimiters('a \\(\n\nb\\)')).toBe('a \\(\n\nb\\)');
    expect(normalizeMathDelimiters('costs $5 and $10')).toBe('costs $5 and $10');
  });
});

describe('remarkHtmlAsText', () => {
  it('replaces html nodes with text, wrapped in a paragraph where a block is expected', () => {
    const tree = {
      type: 'root',
      children: [
        { type: 'html', value: '<script>alert(1)</script>' },
        { type: 'paragraph', children: [{ type: 'html', value: '<b>' }, { type: 'text', value: 'x' }] },
      ],
    };
    remarkHtmlAsText()(tree);
    expect(tree.children[0]).toEqual({ type: 'paragraph', children: [{ type: 'text', value: '<script>alert(1)</script>' }] });
    expect(tree.children[1]!.children![0]).toEqual({ type: 'text', value: '<b>' });
  });
});

describe('hastText', () => {
  it('joins the text of nested nodes', () => {
    expect(
      hastText({ type: 'element', children: [{ type: 'text', value: 'const ' }, { type: 'element', children: [{ type: 'text', value: 'a' }] }] }),
    ).toBe('const a');
    expect(hastText(undefined)).toBe('');
  });
});

describe('hasMath', () => {
  it('spots math delimiters and not prices', () => {
    expect(hasMath('so $$x$$')).toBe(true);
    expect(hasMath('so \\(x\\)')).toBe(true);
    expect(hasMath('\\[x\\]')).toBe(true);
    expect(hasMath('costs $5 and $10')).toBe(false);
  });
});
