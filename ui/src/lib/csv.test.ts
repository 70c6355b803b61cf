import { describe, expect, it } from 'vitest';
import { csvCell, toCsv } from './csv';
import { BREAKDOWN_CSV_HEADER, breakdownCsvRows } from './spend';
import type { SpendRow } from '../api';

describe('csv', () => {
  it('quotes commas, quotes and newlines', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell(null)).toBe('');
    expect(csvCell(42)).toBe('42');
  });
  it('defuses spreadsheet formulas in text but not numbers', () => {
    expect(csvCell('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell(-5)).toBe('-5');
  });
  it('writes a header and CRLF rows', () => {
    expect(toCsv(['a', 'b'], [[1, 'x']])).toBe('a,b\r\n1,x\r\n');
  });
});

const row = (over: Partial<SpendRow>): SpendRow => ({
  group: 'gpt-4o',
  bucket: 'credit',
  currency: 'USD',
  requests: 0,
  errors: 0,
  fallbacks: 0,
  unpriced: 0,
  input_tokens: 0,
  output_tokens: 0,
  cost: 0,
  cost_formatted: '0',
  ...over,
});

describe('breakdown export', () => {
  it('writes one line per bucket, unpriced requests counted in their bucket', () => {
    // As the server sends them: the 4 unpriced requests are in Credit's row, in USD.
    const rows = [
      row({ requests: 14, cost: 1_500_000, fallbacks: 1, unpriced: 4 }),
      row({ bucket: 'wallet', currency: 'CNY', requests: 5, cost: 2_000_000, errors: 1 }),
      row({ bucket: '', currency: '', requests: 2, errors: 2 }),
    ];
    const csv = toCsv(BREAKDOWN_CSV_HEADER, breakdownCsvRows(rows)).split('\r\n');
    expect(csv[0]).toBe('group,bucket,currency,requests,input_tokens,output_tokens,cost,unpriced,fallbacks,fallback_rate,errors,error_rate');
    expect(csv[1]).toBe('gpt-4o,credit,USD,14,0,0,1.5,4,1,0.0714,0,0.0000');
    expect(csv[2]).toBe('gpt-4o,wallet,CNY,5,0,0,2,0,0,0.0000,1,0.2000');
    expect(csv[3]).toBe('gpt-4o,none,,2,0,0,0,0,0,0.0000,2,1.0000');
  });
});
