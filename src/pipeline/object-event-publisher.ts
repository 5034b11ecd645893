import { randomBytes } from 'node:crypto';
import type { ClipRecorder } from '../clips/clip-recorder.js';
import type { Logger } from '../log.js';
import type { SnapshotStore } from '../snapshots/snapshot-store.js';
import { SNAPSHOT_EVENT_TYPES, type ClipEventDraft, type ObjectEvent, type ObjectEventDraft, type ObjectEventType } from '../tracking/object-events.js';

/** A run id: time-ordered and random enough that two runs (or two machines) never share one. */
export function newRunId(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/**
 * Gives each object event its id and emission time, attaches its snapshot (written before the event goes out, so
 * a consumer that sees the path can open the file) and the path of its clip (written later, announced by
 * clip.ready), and hands it on. Events go out one at a time in the order they were published, clip events
 * included: ids rise in the order consumers see them.
 */
export class ObjectEventPublisher {
  readonly runId: string;
  readonly countsByType = new Map<ObjectEventType, number>();
  #sequence = 0;
  #snapshotErrorLogged = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly emit: (event: ObjectEvent) => void,
    private readonly snapshots: SnapshotStore | null,
    private readonly log: Logger,
    runId = newRunId(),
    private readonly clips: ClipRecorder | null = null,
  ) {
    this.runId = runId;
  }

  /** Stamps and emits the events the tracker decided for one frame, after those published before. */
  publish(drafts: readonly ObjectEventDraft[]): Promise<void> {
    return this.#inTurn(() => this.#publishNow(drafts));
  }

  /** Stamps and emits a clip event (clip.ready / clip.failed), after the events published before. */
  publishClip(draft: ClipEventDraft): Promise<void> {
    return this.#inTurn(async () => this.#stampAndEmit(draft));
  }

  /** Resolves once everything published so far has gone out. */
  idle(): Promise<void> {
    return this.#chain;
  }

  #inTurn(work: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #publishNow(drafts: readonly ObjectEventDraft[]): Promise<void> {
    for (const draft of drafts) {
      this.#sequence += 1;
      // id and type first: the fields a reader of the events file looks for.
      const { schemaVersion, type, ...rest } = draft;
      const event = { schemaVersion, id: `${this.runId}-${this.#sequence}`, type, ...rest, atMs: 0 } as ObjectEvent;
      if (this.snapshots !== null && SNAPSHOT_EVENT_TYPES.has(draft.type)) {
        const path = await this.#snapshot(draft);
        if (path !== null) event.snapshot = path;
      }
      if (this.clips?.wants(event) === true) {
        const path = this.clips.request(event);
        if (path !== null) event.clip = path;
      }
      if (draft.type === 'object.end') this.snapshots?.forget(draft.source, draft.trackId);
      this.#emit(event);
    }
  }

  #stampAndEmit(draft: ClipEventDraft): void {
    this.#sequence += 1;
    const { schemaVersion, type, ...rest } = draft;
    this.#emit({ schemaVersion, id: `${this.runId}-${this.#sequence}`, type, ...rest, atMs: 0 } as ObjectEvent);
  }

  #emit(event: ObjectEvent): void {
    event.atMs = Date.now();
    this.countsByType.set(event.type, (this.countsByType.get(event.type) ?? 0) + 1);
    this.emit(event);
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
