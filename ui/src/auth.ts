// The admin token for /api. It arrives as `window.__SWITCHYARD_ADMIN__` (set by
// the desktop shell) or as `#token=…` in the URL (the link `switchyard serve`
// prints). It is kept in sessionStorage only and removed from the URL at once,
// so it does not linger in history, bookmarks or screenshots.

declare global {
  interface Window {
    __SWITCHYARD_ADMIN__?: string;
  }
}

const STORAGE_KEY = 'switchyard.admin';

/** Reads `token` from a location hash like `#token=sya-…&x=y`. */
export function tokenFromHash(hash: string): string | null {
  const h = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!h) return null;
  const params = new URLSearchParams(h);
  const t = params.get('token');
  return t && t.trim() ? t.trim() : null;
}

function safeSession(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

let memoryToken: string | null = null;

/** Picks up a token from the shell or the URL; call once before rendering. */
export function captureToken(): void {
  const fromShell = typeof window.__SWITCHYARD_ADMIN__ === 'string' ? window.__SWITCHYARD_ADMIN__ : null;
  const fromHash = tokenFromHash(window.location.hash);
  if (fromHash) {
    const url = window.location.pathname + window.location.search;
    window.history.replaceState(window.history.state, '', url);
  }
  const token = fromShell || fromHash;
  if (token) {
    memoryToken = token;
    safeSession()?.setItem(STORAGE_KEY, token);
  }
}

export function getToken(): string | null {
  if (memoryToken) return memoryToken;
  const stored = safeSession()?.getItem(STORAGE_KEY) ?? null;
  memoryToken = stored;
  return stored;
}

export function clearToken(): void {
  memoryToken = null;
  safeSession()?.removeItem(STORAGE_KEY);
}
