import { describe, expect, it } from 'vitest';
import { coalesce } from './coalesce';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('coalesce', () => {
  it('runs at once when idle, and once more after a burst of calls in flight', async () => {
    const pending: ReturnType<typeof deferred>[] = [];
    const refresh = coalesce(() => {
      const d = deferred();
      pending.push(d);
      return d.promise;
    });
    refresh();
    expect(pending).toHaveLength(1);
    refresh();
    refresh();
    refresh();
    expect(pending).toHaveLength(1); // never two out at once
    pending[0]!.resolve();
    await tick();
    expect(pending).toHaveLength(2); // the burst became one more read
    pending[1]!.resolve();
    await tick();
    expect(pending).toHaveLength(2);
  });
  it('keeps working after a failed run', async () => {
    const pending: ReturnType<typeof deferred>[] = [];
    const refresh = coalesce(() => {
      const d = deferred();
      pending.push(d);
      return d.promise;
    });
    refresh();
    pending[0]!.reject(new Error('offline'));
    await tick();
    refresh();
    expect(pending).toHaveLength(2);
  });
});
