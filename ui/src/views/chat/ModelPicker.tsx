import type { ChatModel } from '../../api';
import { bucketLabel } from '../../lib/money';
import { modelLabel, modelPrice } from '../../lib/estimate';

export const MAX_COMPARE = 6;

/** One model, or 2–6 of them in compare mode. Every model shows who pays and
 * its price per 1M tokens; two routes to one upstream model are two names here. */
export function ModelPicker({
  models,
  compare,
  model,
  compareModels,
  onModel,
  onCompareModels,
}: {
  models: ChatModel[];
  compare: boolean;
  model: string;
  compareModels: string[];
  onModel: (m: string) => void;
  onCompareModels: (ms: string[]) => void;
}) {
  if (!compare) {
    const picked = models.find((m) => m.model === model);
    return (
      <span className="model-single">
        <label className="sr-only" htmlFor="chat-model">
          Model
        </label>
        <select id="chat-model" value={picked ? model : ''} onChange={(e) => onModel(e.target.value)} data-testid="model-picker">
          {!picked ? <option value="">{model ? `${model} (not available)` : 'Choose a model'}</option> : null}
          {models.map((m) => (
            <option key={m.model} value={m.model}>
              {modelLabel(m)}
            </option>
          ))}
        </select>
        {picked && picked.route_targets > 1 ? (
          <span className="model-facts small muted" title="The route has backups: another target answers if the primary fails">
            {picked.route_targets} targets
          </span>
        ) : null}
      </span>
    );
  }
  const toggle = (name: string, on: boolean) => {
    if (on) onCompareModels(compareModels.includes(name) ? compareModels : [...compareModels, name].slice(0, MAX_COMPARE));
    else onCompareModels(compareModels.filter((x) => x !== name));
  };
  const full = compareModels.length >= MAX_COMPARE;
  return (
    <fieldset className="model-multi" data-testid="model-picker">
      <legend>
        Compare {compareModels.length} of 2–{MAX_COMPARE} models
        {compareModels.length < 2 ? <span className="muted"> · pick at least 2</span> : null}
      </legend>
      <ul>
        {models.map((m) => {
          const on = compareModels.includes(m.model);
          return (
            <li key={m.model}>
              <label className="check">
                <input
                  type="checkbox"
                  checked={on}
                  disabled={!on && full}
                  onChange={(e) => toggle(m.model, e.target.checked)}
                  data-testid="model-option"
                  data-model={m.model}
                />
                <span className="model-name">{m.model}</span>
                <span className="small muted">
                  <span className={`bucket-dot bucket-${m.bucket}`} aria-hidden="true" />
                  {bucketLabel(m.bucket)} · {modelPrice(m)}
                </span>
              </label>
            </li>
          );
        })}
      </ul>
    </fieldset>
  );
}
