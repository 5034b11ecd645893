/**
 * Entry point of a camera's capture process (forked by capture-process.ts, one per live source). OpenCV lives in
 * one thread per process and its VideoCapture constructor blocks until the camera answers, so each camera gets a
 * process of its own: opening, hanging or crashing here costs this camera alone. Exits when told to, when the
 * capture ends, or when the parent goes away (the IPC channel closes), so it can never outlive visionpipe.
 */
import { Worker } from 'node:worker_threads';
import { CaptureLoop } from './capture-loop.js';
import type { FromCapture, ToCapture } from './capture-protocol.js';
import { openVideoCapture } from './open-video-capture.js';

if (process.send === undefined) throw new Error('capture-child must be started with an IPC channel (fork)');

const loop = new CaptureLoop(
  openVideoCapture,
  (msg: FromCapture) => {
    // `ended` is the last message: exit once it has left (or at once when the parent is gone).
    const exitAfter = msg.type === 'ended' ? () => process.exit(0) : undefined;
    if (process.connected) process.send?.(msg, undefined, {}, exitAfter);
    else exitAfter?.();
  },
  () => undefined,
);
process.on('message', (msg: ToCapture) => loop.handle(msg));
process.on('disconnect', () => process.exit(0));

// 'disconnect' needs this thread, which a connection attempt can block for as long as the camera takes to answer
// (VideoCapture's constructor is synchronous), or forever if the decoder hangs in native code. A thread that only
// watches the parent ends the process as soon as visionpipe is gone (killed with -9 included): re-parented, our
// parent pid changes. It loads nothing else (OpenCV stays in the main thread).
const parentPid = process.ppid;
new Worker(
  `setInterval(() => { if (process.ppid !== ${parentPid}) process.kill(process.pid, 'SIGKILL'); }, 250);`,
  { eval: true },
).unref();
