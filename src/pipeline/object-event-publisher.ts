import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { SnapshotStore } from '../snapshots/snapshot-store.js';
import { SNAPSHOT_EVENT_TYPES, type ObjectEvent, type ObjectEventDraft, type ObjectEventType } from '../tracking/object-events.js';

/** A run id: time-ordered and random enough that two runs (or two machines) never share one. */
export function newRunId(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/**
 * Gives each object event its id and emission time, attaches its snapshot (written before the event goes out, so
 * a consumer that sees the path can open the file), and hands it on. Events go out in the order they were decided.
 */
export class ObjectEventPublisher {
  readonly runId: string;
  readonly countsByType = new Map<ObjectEventType, number>();
  #sequence = 0;
  #snapshotErrorLogged = false;

  constructor(
    private readonly emit: (event: ObjectEvent) => void,
    private readonly snapshots: SnapshotStore | null,
    private readonly log: Logger,
    runId = newRunId(),
  ) {
    this.runId = runId;
  }

  async publish(drafts: readonly ObjectEventDraft[]): Promise<void> {
    for (const draft of drafts) {
      this.#sequence += 1;
      // id and type first: the fields a reader of the events file looks for.
      const { schemaVersion, type, ...rest } = draft;
      const event = { schemaVersion, id: `${this.runId}-${this.#sequence}`, type, ...rest, atMs: 0 } as ObjectEvent;
      if (this.snapshots !== null && SNAPSHOT_EVENT_TYPES.has(draft.type)) {
        const path = await this.#snapshot(draft);
        if (path !== null) event.snapshot = path;
      }
      if (draft.type === 'object.end') this.snapshots?.forget(draft.source, draft.trackId);
      event.atMs = Date.now();
      this.countsByType.set(draft.type, (this.countsByType.get(draft.type) ?? 0) + 1);
      this.emit(event);
    }
  }

  async #snapshot(draft: ObjectEventDraft): Promise<string | null> {
    try {
      return (await this.snapshots?.save(draft.source, draft.trackId)) ?? null;
    } catch (err) {
      // A full disk must not stop the events: they go out without a snapshot, and the first failure is logged.
      if (!this.#snapshotErrorLogged) {
        this.#snapshotErrorLogged = true;
        this.log.warn({ err: (err as Error).message }, 'snapshot not written; events go on without snapshots that fail');
      }
      return null;
    }
  }
}
