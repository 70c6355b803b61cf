// The gateway's status (version, paused, both balances), kept fresh cheaply:
// one small GET /api/status, read on demand (a view change, a top-up, a test
// request), when the window comes back into focus or view, and every few
// seconds only while the page is visible. Concurrent asks share one request.

import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorMessage, type Status } from './api';
import { coalesce } from './lib/coalesce';

/** How often the status is polled while the page is visible. */
export const STATUS_POLL_MS = 4_000;

export function useStatus(pollMs: number = STATUS_POLL_MS) {
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refreshRef = useRef<() => void>(() => undefined);

  useEffect(() => {
    let live = true;
    const refresh = coalesce(() =>
      api.status().then(
        (s) => {
          if (!live) return;
          // An unchanged status keeps its identity, so polling re-renders nothing.
          setStatus((prev) => (prev && JSON.stringify(prev) === JSON.stringify(s) ? prev : s));
          setError(null);
        },
        (e: unknown) => {
          if (live) setError(errorMessage(e));
        },
      ),
    );
    refreshRef.current = refresh;

    let timer: ReturnType<typeof setInterval> | null = null;
    const startPolling = () => {
      if (timer === null) timer = setInterval(refresh, pollMs);
    };
    const stopPolling = () => {
      if (timer !== null) clearInterval(timer);
      timer = null;
    };
    const onVisibility = () => {
      if (document.visibilityState === 'visible') {
        refresh();
        startPolling();
      } else {
        stopPolling();
      }
    };
    const onFocus = () => refresh();

    refresh();
    if (document.visibilityState === 'visible') startPolling();
    document.addEventListener('visibilitychange', onVisibility);
    window.addEventListener('focus', onFocus);
    return () => {
      live = false;
      stopPolling();
      document.removeEventListener('visibilitychange', onVisibility);
      window.removeEventListener('focus', onFocus);
      refreshRef.current = () => undefined;
    };
  }, [pollMs]);

  const refresh = useCallback(() => refreshRef.current(), []);
  return { status, error, refresh };
}
