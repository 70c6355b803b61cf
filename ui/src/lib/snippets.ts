// Copy-ready snippets for pointing a tool at the gateway.

export interface Snippets {
  python: string;
  curl: string;
  ide: string;
  env: string;
}

/** `origin` is the page's origin (the gateway itself); `key` may be a placeholder. */
export function snippets(origin: string, key: string, model = 'MODEL'): Snippets {
  const base = `${origin.replace(/\/+$/, '')}/v1`;
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello' }] });
  return {
    python: [
      'from openai import OpenAI',
      '',
      `client = OpenAI(base_url="${base}", api_key="${key}")`,
      'reply = client.chat.completions.create(',
      `    model="${model}",`,
      '    messages=[{"role": "user", "content": "Hello"}],',
      ')',
      'print(reply.model, reply.choices[0].message.content)',
    ].join('\n'),
    curl: [
      `curl -sS ${base}/chat/completions \\`,
      `  -H "Authorization: Bearer ${key}" \\`,
      '  -H "Content-Type: application/json" \\',
      `  -d '${body}'`,
    ].join('\n'),
    ide: [
      '# Any OpenAI-compatible plugin (Continue, Cline, Cursor, …):',
      `API base URL:  ${base}`,
      `API key:       ${key}`,
      `Model:         ${model}`,
      '',
      '# Continue (config.yaml)',
      'models:',
      `  - name: ${model} via Switchyard`,
      '    provider: openai',
      `    model: ${model}`,
      `    apiBase: ${base}`,
      `    apiKey: ${key}`,
    ].join('\n'),
    env: [`export OPENAI_BASE_URL=${base}`, `export OPENAI_API_KEY=${key}`].join('\n'),
  };
}
