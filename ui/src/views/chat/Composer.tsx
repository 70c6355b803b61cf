import { forwardRef, useEffect, useId, useRef, useState, type ClipboardEvent, type DragEvent } from 'react';
import { chatApi, errorMessage, type Attachment, type ChatModel, type ChatParams, type Estimate } from '../../api';
import { formatBytes } from '../../lib/bytes';
import { estimateTokens, formatEstimate } from '../../lib/estimate';
import { ChatSettings } from './ChatSettings';
import { ModelPicker } from './ModelPicker';

interface Pending {
  key: string;
  name: string;
  size: number;
  state: 'uploading' | 'ready' | 'failed';
  attachment?: Attachment;
  error?: string;
}

const ESTIMATE_DELAY_MS = 400;

/** Where the next message is written: model(s), settings, attachments, the
 * cost estimate, Send and Stop. Enter sends, Shift+Enter is a new line. */
export const Composer = forwardRef<
  HTMLTextAreaElement,
  {
    conversationId: string | null;
    parentId: string | null;
    models: ChatModel[];
    modelsError: string | null;
    compare: boolean;
    onToggleCompare: () => void;
    model: string;
    compareModels: string[];
    onModel: (m: string) => void;
    onCompareModels: (ms: string[]) => void;
    system: string;
    params: ChatParams;
    onSettings: (p: { system?: string; params?: ChatParams }) => void;
    streaming: boolean;
    onSend: (content: string, attachments: string[]) => Promise<boolean>;
    onStop: () => void;
  }
>(function Composer(props, inputRef) {
  const { models, compare, model, compareModels, streaming } = props;
  const [text, setText] = useState('');
  const [files, setFiles] = useState<Pending[]>([]);
  const [sending, setSending] = useState(false);
  const [showSettings, setShowSettings] = useState(false);
  const [dragging, setDragging] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const settingsId = useId();

  const chosen = compare ? compareModels : model ? [model] : [];
  const reasoning = chosen.some((name) => models.find((m) => m.model === name)?.reasoning);
  const uploading = files.some((f) => f.state === 'uploading');
  const ready = files.filter((f) => f.state === 'ready' && f.attachment).map((f) => f.attachment!.id);
  const enough = compare ? compareModels.length >= 2 : Boolean(model);
  const canSend = enough && !uploading && !sending && !streaming && (text.trim() !== '' || ready.length > 0);

  const estimate = useEstimate(props.conversationId, props.parentId, text, chosen, props.params.max_tokens);

  const addFiles = (list: FileList | File[]) => {
    for (const file of Array.from(list)) {
      const key = `${Date.now()}-${Math.random()}`;
      setFiles((fs) => [...fs, { key, name: file.name || 'pasted file', size: file.size, state: 'uploading' }]);
      chatApi
        .upload(file)
        .then((a) => setFiles((fs) => fs.map((f) => (f.key === key ? { ...f, state: 'ready', attachment: a, name: a.name } : f))))
        .catch((e: unknown) => setFiles((fs) => fs.map((f) => (f.key === key ? { ...f, state: 'failed', error: errorMessage(e) } : f))));
    }
  };

  const send = () => {
    if (!canSend) return;
    setSending(true);
    const content = text;
    props
      .onSend(content, ready)
      .then((ok) => {
        if (!ok) return;
        // Cleared only once the gateway took it; a refusal keeps what was written.
        setText((t) => (t === content ? '' : t));
        setFiles((fs) => fs.filter((f) => f.state === 'uploading'));
      })
      .finally(() => setSending(false));
  };

  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    if (e.clipboardData.files.length) {
      e.preventDefault();
      addFiles(e.clipboardData.files);
    }
  };
  const onDrop = (e: DragEvent) => {
    setDragging(false);
    if (!e.dataTransfer.files.length) return;
    e.preventDefault();
    addFiles(e.dataTransfer.files);
  };

  return (
    <div
      className={`composer${dragging ? ' dragging' : ''}`}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes('Files')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
      data-testid="composer"
    >
      {files.length ? (
        <ul className="attachment-list" aria-label="Attachments">
          {files.map((f) => (
            <li key={f.key} className={`chip attachment-chip state-${f.state}`} data-testid="attachment-chip" data-state={f.state} title={f.error}>
              {f.name} <span className="muted">{f.state === 'uploading' ? 'uploading…' : f.state === 'failed' ? 'failed' : formatBytes(f.size)}</span>
              <button
                type="button"
                className="icon-btn"
                onClick={() => setFiles((fs) => fs.filter((x) => x.key !== f.key))}
                aria-label={`Remove ${f.name}`}
                data-testid="attachment-remove"
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      {files.some((f) => f.state === 'failed') ? (
        <p className="negative small" role="alert">
          {files.filter((f) => f.state === 'failed').map((f) => `${f.name}: ${f.error ?? 'upload failed'}`).join(' · ')}
        </p>
      ) : null}

      <label className="sr-only" htmlFor="composer-input">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={inputRef}
        className="composer-input"
        value={text}
        rows={Math.min(10, Math.max(2, text.split('\n').length))}
        placeholder={compare ? 'Ask all the chosen models…' : 'Write a message… (Enter sends, Shift+Enter adds a line)'}
        onChange={(e) => setText(e.target.value)}
        onPaste={onPaste}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            send();
          }
        }}
        data-testid="composer-input"
        aria-describedby="composer-estimate"
      />

      <div className="composer-bar">
        <ModelPicker
          models={models}
          compare={compare}
          model={model}
          compareModels={compareModels}
          onModel={props.onModel}
          onCompareModels={props.onCompareModels}
        />
        <span className="composer-tools">
          <button
            type="button"
            className="btn btn-small"
            aria-pressed={compare}
            onClick={props.onToggleCompare}
            data-testid="compare-toggle"
            title="Send one message to 2–6 models (Ctrl/Cmd+Shift+M)"
          >
            {compare ? 'Compare: on' : 'Compare'}
          </button>
          <button
            type="button"
            className="btn btn-small"
            aria-expanded={showSettings}
            aria-controls={settingsId}
            onClick={() => setShowSettings((s) => !s)}
            data-testid="chat-settings-toggle"
          >
            Settings
          </button>
          <button type="button" className="btn btn-small" onClick={() => fileRef.current?.click()} data-testid="attach">
            Attach…
          </button>
          <input
            ref={fileRef}
            type="file"
            multiple
            hidden
            onChange={(e) => {
              if (e.target.files) addFiles(e.target.files);
              e.target.value = '';
            }}
            data-testid="attach-input"
          />
        </span>
        <span className="spacer" />
        {streaming ? (
          <button type="button" className="btn btn-danger" onClick={props.onStop} data-testid="stop" title="Stop every answer (Esc)">
            Stop
          </button>
        ) : (
          <button type="button" className="btn btn-primary" onClick={send} disabled={!canSend} data-testid="send">
            {sending ? 'Sending…' : compare ? `Send to ${compareModels.length}` : 'Send'}
          </button>
        )}
      </div>

      {showSettings ? (
        <div id={settingsId}>
          <ChatSettings system={props.system} params={props.params} reasoning={reasoning} models={models} onChange={props.onSettings} />
        </div>
      ) : null}

      <div className="estimate small" id="composer-estimate" data-testid="estimate" aria-live="polite">
        {props.modelsError ? <span className="negative">{props.modelsError}</span> : null}
        {!props.modelsError && models.length === 0 ? <span className="muted">No models to chat with yet: add a channel and a route first.</span> : null}
        {estimate.error ? <span className="muted">Estimate unavailable: {estimate.error}</span> : null}
        {estimate.items.map((e) => (
          <span key={e.model} className="estimate-item" title={estimateTokens(e)} data-testid="estimate-item" data-model={e.model}>
            {chosen.length > 1 ? <span className="model-name">{e.model}: </span> : null}
            {formatEstimate(e)}
          </span>
        ))}
      </div>
    </div>
  );
});

/** POST /api/chat/estimate after a pause in typing; the newest answer wins. */
function useEstimate(conversationId: string | null, parentId: string | null, text: string, models: string[], maxTokens: number | undefined) {
  const [items, setItems] = useState<Estimate[]>([]);
  const [error, setError] = useState<string | null>(null);
  const key = JSON.stringify([conversationId, parentId, text, models, maxTokens]);
  useEffect(() => {
    if (!text.trim() || models.length === 0) {
      setItems([]);
      setError(null);
      return undefined;
    }
    const ctl = new AbortController();
    const t = setTimeout(() => {
      chatApi
        .estimate(
          {
            conversation_id: conversationId ?? undefined,
            parent_id: conversationId ? parentId : null,
            content: text,
            models,
            max_tokens: maxTokens,
          },
          ctl.signal,
        )
        .then((r) => {
          // In the order the models were chosen.
          const order = new Map(models.map((m, i) => [m, i]));
          setItems([...r.estimates].sort((a, b) => (order.get(a.model) ?? 99) - (order.get(b.model) ?? 99)));
          setError(null);
        })
        .catch((e: unknown) => {
          if (ctl.signal.aborted) return;
          setItems([]);
          setError(errorMessage(e));
        });
    }, ESTIMATE_DELAY_MS);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return { items, error };
}
