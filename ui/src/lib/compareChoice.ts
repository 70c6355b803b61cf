// Which models a compare starts from. Turning compare on with nothing
// remembered checks the single model in use, so one more click makes a
// compare; after that the list is the user's: unchecking every model leaves
// none checked (it is not filled in again behind their back).

/** The models to check: `chosen`, or — only as compare is turned on with none — the single `model`. */
export function compareModelsFor(chosen: readonly string[], model: string, turnedOn: boolean): readonly string[] {
  if (turnedOn && chosen.length === 0 && model) return [model];
  return chosen;
}
