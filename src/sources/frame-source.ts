import type { Frame } from '../pipeline/frame.js';

export interface SourceInfo {
  kind: 'file';
  /** For logs and events; never contains credentials. */
  id: string;
  sizeWh: [number, number];
  fps: number;
  /** Total frames when the container says so, else null. */
  frameCount: number | null;
}

/** Something frames are pulled from, one at a time. `read` resolves null at the end. */
export interface FrameSource {
  readonly info: SourceInfo;
  read(): Promise<Frame | null>;
  close(): void;
}
