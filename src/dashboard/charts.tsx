/**
 * Charts as inline SVG rendered on the server (no script, no inline styles: the CSP allows none).
 * Colours come from presentation attributes; every chart has a text alternative and <title>s.
 */
import type { FC } from 'hono/jsx';

export const COLORS = { settled: '#137333', open: '#0b57d0', expired: '#9aa3ad', invalid: '#b3261e', bar: '#0b57d0', grid: '#d6dbe1', text: '#4a535d' };

const shortDay = (d: string) => `${d.slice(8, 10)}.${d.slice(5, 7)}.`;

/** Invoices per day, stacked by outcome. */
export const InvoicesPerDayChart: FC<{ days: { day: string; settled: number; expired: number; invalid: number; open: number }[] }> = ({ days }) => {
  const W = 720;
  const H = 220;
  const pad = { l: 36, r: 8, t: 10, b: 26 };
  const max = Math.max(1, ...days.map((d) => d.settled + d.expired + d.invalid + d.open));
  const top = max <= 4 ? max : Math.ceil(max / 4) * 4;
  const bw = (W - pad.l - pad.r) / Math.max(1, days.length);
  const y = (n: number) => pad.t + (H - pad.t - pad.b) * (1 - n / top);
  const series = [['settled', COLORS.settled], ['open', COLORS.open], ['expired', COLORS.expired], ['invalid', COLORS.invalid]] as const;
  const ticks = [0, top / 2, top].filter((t, i, a) => Number.isInteger(t) && a.indexOf(t) === i);
  // Date labels: about eight, always the last day, never two overlapping at the end.
  const step = Math.max(1, Math.ceil(days.length / 8));
  const labelled = new Set<number>([days.length - 1]);
  for (let i = 0; i < days.length - 1; i += step) if (days.length - 1 - i >= step / 2 + 0.5 || i === 0) labelled.add(i);
  // On a phone the labels are drawn larger (dashboard.css); every other one is then left out.
  const minor = new Set([...labelled].sort((a, b) => b - a).filter((_, k) => k % 2 === 1));
  const total = days.reduce((s, d) => s + d.settled + d.expired + d.invalid + d.open, 0);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`Invoices per day by outcome: ${total} invoices in ${days.length} days`} id="chart-invoices">
        {ticks.map((t) => (
          <g>
            <line x1={pad.l} x2={W - pad.r} y1={y(t)} y2={y(t)} stroke={COLORS.grid} stroke-width="1" />
            <text x={pad.l - 6} y={y(t) + 4} text-anchor="end" font-size="11" fill={COLORS.text}>{t}</text>
          </g>
        ))}
        {days.map((d, i) => {
          let acc = 0;
          return (
            <g>
              <title>{`${d.day}: ${d.settled} settled, ${d.open} open, ${d.expired} expired, ${d.invalid} invalid`}</title>
              {series.map(([k, color]) => {
                const n = d[k];
                if (n === 0) return null;
                const y0 = y(acc + n);
                const h = y(acc) - y0;
                acc += n;
                return <rect x={pad.l + i * bw + bw * 0.15} y={y0} width={Math.max(1, bw * 0.7)} height={h} fill={color} />;
              })}
              {labelled.has(i) ? (
                <text x={pad.l + i * bw + bw / 2} y={H - 8} text-anchor="middle" font-size="11" fill={COLORS.text} class={minor.has(i) ? 'day minor' : 'day'}>{shortDay(d.day)}</text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption class="legend">
        {series.map(([k, color]) => (
          <span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill={color} /></svg> {k}</span>
        ))}
      </figcaption>
    </figure>
  );
};

/** A horizontal meter (0–100 %) for the payment success rate. */
export const RateMeter: FC<{ percent: string | null; label: string }> = ({ percent, label }) => {
  const p = percent === null ? 0 : Math.min(100, Math.max(0, Number(percent)));
  return (
    <svg viewBox="0 0 200 12" width="100%" height="12" role="img" aria-label={`${label}: ${percent ?? 'n/a'} %`} class="meter">
      <rect x="0" y="0" width="200" height="12" rx="6" fill={COLORS.grid} />
      <rect x="0" y="0" width={p * 2} height="12" rx="6" fill={COLORS.settled} />
    </svg>
  );
};

/** Volume per day of one asset; bar heights are base-unit ratios (bigint), amounts stay strings. */
export const VolumeChart: FC<{ method: string; asset: string; perDay: bigint[]; days: string[] }> = ({ method, asset, perDay, days }) => {
  const W = 340;
  const H = 90;
  const max = perDay.reduce((m, v) => (v > m ? v : m), 0n);
  const bw = W / Math.max(1, perDay.length);
  return (
    <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${asset} received per day`} class="volume" data-method={method}>
      <line x1="0" x2={W} y1={H - 1} y2={H - 1} stroke={COLORS.grid} />
      {perDay.map((v, i) => {
        if (v === 0n || max === 0n) return null;
        const h = Math.max(2, Number((v * BigInt(H - 4)) / max));
        return (
          <rect x={i * bw + bw * 0.15} y={H - 1 - h} width={Math.max(1, bw * 0.7)} height={h} fill={COLORS.bar}>
            <title>{`${days[i] ?? ''}`}</title>
          </rect>
        );
      })}
    </svg>
  );
};
