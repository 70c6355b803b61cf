import { useEffect, useRef, useState } from 'react';
import { setUnauthorizedHandler } from './api';
import { captureToken, clearToken, getToken } from './auth';
import { usePath } from './router';
import { VIEWS } from './views';
import { StatusStrip } from './components/StatusStrip';
import { Onboarding, onboardingDismissed } from './views/Onboarding';
import { useStatus } from './useStatus';

export function App() {
  const [token, setTokenState] = useState(() => getToken());
  const [rejected, setRejected] = useState(false);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      clearToken();
      setRejected(true);
      setTokenState(null);
    });
    // An admin link opened in this tab changes only the hash: pick it up.
    const onHash = () => {
      captureToken();
      const t = getToken();
      if (t) {
        setRejected(false);
        setTokenState(t);
      }
    };
    window.addEventListener('hashchange', onHash);
    return () => {
      setUnauthorizedHandler(null);
      window.removeEventListener('hashchange', onHash);
    };
  }, []);

  if (!token) return <NoToken rejected={rejected} />;
  return <Shell />;
}

function NoToken({ rejected }: { rejected: boolean }) {
  return (
    <main className="no-token" data-testid="no-token">
      <div className="no-token-card">
        <h1>Switchyard</h1>
        {rejected ? (
          <p className="warn" data-testid="token-rejected">
            The admin link you opened is no longer valid (the gateway may have restarted with a new one).
          </p>
        ) : (
          <p>This page needs the admin link to open the management views.</p>
        )}
        <ol>
          <li>
            Run <code>switchyard serve</code> in a terminal (or start the Switchyard app).
          </li>
          <li>
            Open the <strong>Admin link</strong> it prints, which looks like{' '}
            <code>http://127.0.0.1:4141/#token=sya-…</code>
          </li>
        </ol>
        <p className="muted">The link holds a token for this browser tab only; it is never stored on disk.</p>
      </div>
    </main>
  );
}

function Shell() {
  const [path, navigate] = usePath();
  const { status, error: statusError, refresh: refreshStatus } = useStatus();
  const [onboarding, setOnboarding] = useState<'unknown' | 'show' | 'hide'>('unknown');

  useEffect(() => {
    if (status && onboarding === 'unknown') setOnboarding(status.channels === 0 && !onboardingDismissed() ? 'show' : 'hide');
  }, [status, onboarding]);

  const current = VIEWS.find((v) => path === v.path || path.startsWith(`${v.path}/`)) ?? VIEWS[0]!;
  const View = current.component;

  useEffect(() => {
    document.title = `${current.label} · Switchyard`;
  }, [current.label]);

  // Balances move while another view is open: read them again on every view change.
  const shown = onboarding === 'show' ? 'onboarding' : current.id;
  const lastShown = useRef(shown);
  useEffect(() => {
    if (lastShown.current === shown) return;
    lastShown.current = shown;
    refreshStatus();
  }, [shown, refreshStatus]);

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <StatusStrip status={status} error={statusError} onChange={refreshStatus} />
      <div className="body">
        <nav className="nav" aria-label="Views" data-testid="nav">
          <ul>
            {VIEWS.map((v) => (
              <li key={v.id}>
                <a
                  href={v.path}
                  data-testid={`nav-${v.id}`}
                  aria-current={v === current && onboarding !== 'show' ? 'page' : undefined}
                  onClick={(e) => {
                    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                    e.preventDefault();
                    if (onboarding === 'show') setOnboarding('hide');
                    navigate(v.path);
                  }}
                >
                  {v.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main id="main" className="main" tabIndex={-1}>
          {onboarding === 'show' ? (
            <Onboarding
              status={status}
              refreshStatus={refreshStatus}
              onClose={() => setOnboarding('hide')}
            />
          ) : (
            <View key={current.id} status={status} refreshStatus={refreshStatus} navigate={navigate} />
          )}
        </main>
      </div>
    </div>
  );
}
