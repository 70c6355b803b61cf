import { useEffect, useState } from 'react';
import { chatApi, errorMessage, REASONING_EFFORTS, type ChatModel, type ChatParams, type ReasoningEffort } from '../../api';

/** The conversation's system prompt and parameters; each change is saved as it is made. */
export function ChatSettings({
  system,
  params,
  reasoning,
  models,
  onChange,
}: {
  system: string;
  params: ChatParams;
  /** A chosen model can reason: offer the effort. */
  reasoning: boolean;
  /** Every model the app may call, for the title model. */
  models: ChatModel[];
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
      <TitleModel models={models} />
      {error ? (
        <p className="negative small span-all" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** Which model titles new conversations (for every conversation): its call is a receipt of its own. */
function TitleModel({ models }: { models: ChatModel[] }) {
  const [value, setValue] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    chatApi
      .settings()
      .then((s) => live && setValue(s.title_model))
      .catch((e) => live && setError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, []);
  const save = (m: string) => {
    const title_model = m || null;
    setValue(title_model);
    chatApi
      .saveSettings({ title_model })
      .then((s) => {
        setValue(s.title_model);
        setError(null);
      })
      .catch((e) => setError(errorMessage(e)));
  };
  return (
    <label className="span-all">
      Titles of new chats (all conversations)
      <select
        value={value ?? ''}
        disabled={value === undefined && !error}
        onChange={(e) => save(e.target.value)}
        data-testid="title-model"
      >
        <option value="">First words of the first message (no model call)</option>
        {models.map((m) => (
          <option key={m.model} value={m.model}>
            Written by {m.model}
          </option>
        ))}
      </select>
      {error ? <span className="negative small">{error}</span> : null}
    </label>
  );
}
