import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';

/**
 * The one place that loads OpenCV. @u4/opencv4nodejs works in exactly one thread per process (loading it in the
 * main thread and a worker aborts the process), so only the main thread imports this module; workers never do.
 * Its loader logs build-configuration chatter to stdout at load time, which would corrupt a CLI's output: it is
 * silenced here.
 */
// Node 20's V8 aborts the process ("Fatal error … Check failed: marking_done_" in CppHeap::TraceEpilogue) during
// incremental marking once enough Mats made by opencv4nodejs's resize/convert calls are collected: reproduced
// every time by ~800 resizes in one process, and once in a CI test run. Without incremental marking it never
// happened here (same repro, and the whole suite). The cost is longer, rarer GC pauses.
setFlagsFromString('--no-incremental-marking');

// OpenCV's own log (backend probing warnings for files that are not videos) would drown our one clear message.
process.env['OPENCV_LOG_LEVEL'] ??= 'ERROR';
const require = createRequire(import.meta.url);
const cvRequire = createRequire(require.resolve('@u4/opencv4nodejs'));
try {
  (cvRequire('@u4/opencv-build') as { Log: { silence: boolean } }).Log.silence = true;
} catch {
  // Older layouts without @u4/opencv-build: the chatter stays, nothing breaks.
}

export type CV = typeof import('@u4/opencv4nodejs').default;
export type Mat = import('@u4/opencv4nodejs').Mat;

const loaded = cvRequire('@u4/opencv4nodejs') as { default?: CV } & CV;
/** The OpenCV binding (OpenCV 4.x through @u4/opencv4nodejs). */
export const cv: CV = loaded.default ?? loaded;
