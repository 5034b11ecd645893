/**
 * Fields added to every event this process writes (events file and delivery), e.g. `{ worker: 'w1' }` in a cluster
 * worker, so that events from many workers say where they came from. Empty (nothing added) unless set; set once at
 * the start of a process that runs pipelines for a cluster (`visionpipe worker`).
 */
let stamp: Readonly<Record<string, string>> = Object.freeze({});

export function setEventStamp(fields: Record<string, string>): void {
  stamp = Object.freeze({ ...fields });
}

/** The event with the stamp's fields added (the same object when there are none). */
export function stampEvent(event: Record<string, unknown>): Record<string, unknown> {
  return Object.keys(stamp).length === 0 ? event : { ...event, ...stamp };
}
