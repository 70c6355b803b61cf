import { describe, expect, it } from 'vitest';
import { hasMath, hastText, normalizeMathDelimiters, remarkHtmlAsText, splitBlocks, splittable } from './markdown';

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

describe('splitBlocks', () => {
  it('splits at blank lines but keeps fenced code and $$ blocks whole', () => {
    const md = 'Intro\nline two\n\n```py\na = 1\n\nb = 2\n```\n\n$$\nx\n\ny\n$$\n\n- a\n- b\n\n\nend';
    expect(splitBlocks(md)).toEqual(['Intro\nline two', '```py\na = 1\n\nb = 2\n```', '$$\nx\n\ny\n$$', '- a\n- b', 'end']);
  });

  it('keeps an unclosed fence (still streaming) as one last block', () => {
    expect(splitBlocks('p\n\n~~~~\ncode\n\n~~~\nmore')).toEqual(['p', '~~~~\ncode\n\n~~~\nmore']);
    expect(splitBlocks('')).toEqual([]);
  });

  it('keeps a fence opened right under a paragraph with that paragraph', () => {
    expect(splitBlocks('a\n\nb\n```\nc\n\nd\n```')).toEqual(['a', 'b\n```\nc\n\nd\n```']);
  });
});

describe('splittable', () => {
  it('is false when a reference link or footnote is defined', () => {
    expect(splittable('see [x][1]\n\n[1]: https://example.com')).toBe(false);
    expect(splittable('note[^a]\n\n[^a]: the note')).toBe(false);
    expect(splittable('a [link](https://x) and [brackets] here')).toBe(true);
  });
});
