// Reordering a list (route targets: first is primary, the rest backups in order).

/** `list` with the item at `from` taken out and put at `to`; the same array
 * when nothing moves or an index is out of range. */
export function moveItem<T>(list: readonly T[], from: number, to: number): T[] {
  if (from === to || from < 0 || to < 0 || from >= list.length || to >= list.length) return list as T[];
  const copy = list.slice();
  const [item] = copy.splice(from, 1);
  copy.splice(to, 0, item as T);
  return copy;
}
