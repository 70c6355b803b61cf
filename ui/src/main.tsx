import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { captureToken } from './auth';
import { App } from './App';
import './styles.css';

// Take the admin token out of the URL before anything renders.
captureToken();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
