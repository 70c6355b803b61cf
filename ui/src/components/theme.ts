import { useEffect, useState } from 'react';

/** Colours for charts, read from the CSS variables of the current theme and
 * re-read when the OS switches between light and dark. */
export interface ChartColors {
  credit: string;
  wallet: string;
  text: string;
  muted: string;
  grid: string;
  surface: string;
}

function read(): ChartColors {
  const s = getComputedStyle(document.documentElement);
  const v = (name: string, fallback: string) => s.getPropertyValue(name).trim() || fallback;
  return {
    credit: v('--credit', '#2f6fde'),
    wallet: v('--wallet', '#d9822b'),
    text: v('--text', '#222'),
    muted: v('--muted', '#666'),
    grid: v('--border', '#ddd'),
    surface: v('--surface', '#fff'),
  };
}

export function useChartColors(): ChartColors {
  const [colors, setColors] = useState(read);
  useEffect(() => {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    const onChange = () => setColors(read());
    mq.addEventListener('change', onChange);
    return () => mq.removeEventListener('change', onChange);
  }, []);
  return colors;
}
