// Spend per day, stacked by bucket. Buckets only share a chart when they share
// a currency; otherwise each bucket gets its own chart and axis.

import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { BucketName } from '../api';
import type { DailyChart, DailyPoint } from '../lib/spend';
import { bucketLabel, formatMicro } from '../lib/money';
import { useChartColors } from '../components/theme';

export default function SpendChart({ chart }: { chart: DailyChart }) {
  const c = useChartColors();
  const unpriced = chart.data.reduce(
    (n, p) => n + chart.buckets.reduce((m, b) => m + (p[`${b}_unpriced`] ?? 0), 0),
    0,
  );
  const title = `${chart.buckets.map(bucketLabel).join(' + ')} spend per day, ${chart.currency}`;
  return (
    <figure className="chart" data-testid={`spend-chart-${chart.buckets.join('-')}`} aria-label={title}>
      <figcaption>
        {chart.buckets.map(bucketLabel).join(' and ')} <span className="muted">in {chart.currency}</span>
        {unpriced > 0 ? (
          <span className="badge badge-warn" title="Requests with no known price are not in these bars">
            {unpriced} unpriced
          </span>
        ) : null}
      </figcaption>
      <div className="chart-box">
        <ResponsiveContainer width="100%" height="100%">
          <BarChart data={chart.data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid stroke={c.grid} vertical={false} />
            <XAxis dataKey="day" tick={{ fill: c.muted, fontSize: 11 }} tickFormatter={(d: string) => d.slice(5)} stroke={c.grid} minTickGap={12} />
            <YAxis
              tick={{ fill: c.muted, fontSize: 11 }}
              stroke={c.grid}
              width={64}
              tickFormatter={(v: number) => formatMicro(Math.round(v * 1_000_000), chart.currency)}
            />
            <Tooltip
              cursor={{ fill: c.grid, opacity: 0.4 }}
              contentStyle={{ background: c.surface, borderColor: c.grid, color: c.text }}
              labelStyle={{ color: c.text }}
              formatter={(_v, name, item) => {
                const b = name as BucketName;
                const p = (item as { payload?: DailyPoint }).payload;
                const micro = p?.[`${b}_micro`] ?? 0;
                const un = p?.[`${b}_unpriced`] ?? 0;
                return [`${formatMicro(micro, chart.currency)}${un ? ` (+${un} unpriced)` : ''}`, bucketLabel(b)];
              }}
            />
            {chart.buckets.length > 1 ? <Legend formatter={(v: string) => bucketLabel(v)} /> : null}
            {chart.buckets.map((b) => (
              <Bar key={b} dataKey={b} name={b} stackId="spend" fill={b === 'credit' ? c.credit : c.wallet} isAnimationActive={false} />
            ))}
          </BarChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
