/// <reference types="vitest/config" />
import { defineConfig, type ProxyOptions } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API to a running `switchyard serve`
// (SWITCHYARD_URL, default http://127.0.0.1:4141). The Origin header is
// dropped so the gateway treats proxied calls as same-origin.
const target = process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:4141';
const proxy: ProxyOptions = {
  target,
  changeOrigin: true,
  configure: (p) => {
    p.on('proxyReq', (req) => req.removeHeader('origin'));
  },
};

export default defineConfig({
  base: '/',
  plugins: [react()],
  server: { proxy: { '/api': proxy, '/v1': proxy } },
  build: { outDir: 'dist', sourcemap: false },
  test: { environment: 'node', include: ['src/**/*.test.ts'] },
});
