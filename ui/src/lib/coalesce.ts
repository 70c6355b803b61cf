// Refreshes that many events may ask for at once (a view change, a focus, a
// poll tick, a top-up) share one request: a call while one is in flight
// schedules exactly one more run after it, so the newest state is always read
// and never more than one request is out.

export function coalesce(load: () => Promise<unknown>): () => void {
  let running = false;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    load()
      .catch(() => undefined)
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return run;
}
