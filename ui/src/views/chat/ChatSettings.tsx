import { useEffect, useState } from 'react';
import { REASONING_EFFORTS, type ChatParams, type ReasoningEffort } from '../../api';

/** The conversation's system prompt and parameters; each change is saved as it is made. */
export function ChatSettings({
  system,
  params,
  reasoning,
  onChange,
}: {
  system: string;
  params: ChatParams;
  /** A chosen model can reason: offer the effort. */
  reasoning: boolean;
  onChange: (p: { system?: string; params?: ChatParams }) => void;
}) {
  const [sys, setSys] = useState(system);
  const [temp, setTemp] = useState(params.temperature?.toString() ?? '');
  const [maxTokens, setMaxTokens] = useState(params.max_tokens?.toString() ?? '');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setSys(system), [system]);
  useEffect(() => {
    setTemp(params.temperature?.toString() ?? '');
    setMaxTokens(params.max_tokens?.toString() ?? '');
  }, [params.temperature, params.max_tokens]);

  const commitParams = (next: Partial<Record<keyof ChatParams, string>>) => {
    const t = (next.temperature ?? temp).trim();
    const mt = (next.max_tokens ?? maxTokens).trim();
    const effort = next.reasoning_effort ?? params.reasoning_effort ?? '';
    const p: ChatParams = {};
    if (t) {
      const v = Number(t);
      if (!Number.isFinite(v) || v < 0 || v > 2) return setError('Temperature is a number from 0 to 2.');
      p.temperature = v;
    }
    if (mt) {
      const v = Number(mt);
      if (!Number.isInteger(v) || v <= 0) return setError('Max tokens is a whole number above 0.');
      p.max_tokens = v;
    }
    if (effort) p.reasoning_effort = effort as ReasoningEffort;
    setError(null);
    if (JSON.stringify(p) !== JSON.stringify(params)) onChange({ params: p });
  };

  return (
    <div className="chat-settings" data-testid="chat-settings">
      <label className="span-all">
        System prompt
        <textarea
          rows={3}
          value={sys}
          placeholder="None"
          onChange={(e) => setSys(e.target.value)}
          onBlur={() => {
            if (sys !== system) onChange({ system: sys });
          }}
          data-testid="system-prompt"
        />
      </label>
      <label>
        Temperature
        <input
          inputMode="decimal"
          value={temp}
          placeholder="default"
          onChange={(e) => setTemp(e.target.value)}
          onBlur={() => commitParams({ temperature: temp })}
          data-testid="param-temperature"
        />
      </label>
      <label>
        Max tokens
        <input
          inputMode="numeric"
          value={maxTokens}
          placeholder="default"
          onChange={(e) => setMaxTokens(e.target.value)}
          onBlur={() => commitParams({ max_tokens: maxTokens })}
          data-testid="param-max-tokens"
        />
      </label>
      {reasoning ? (
        <label>
          Reasoning effort
          <select
            value={params.reasoning_effort ?? ''}
            onChange={(e) => commitParams({ reasoning_effort: e.target.value })}
            data-testid="param-reasoning-effort"
          >
            <option value="">default</option>
            {REASONING_EFFORTS.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {error ? (
        <p className="negative small span-all" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}
