import { createRequire } from 'node:module';

/**
 * The one place that loads OpenCV. @u4/opencv4nodejs works in exactly one thread per process (loading it in the
 * main thread and a worker aborts the process), so only the main thread imports this module; workers never do.
 * Its loader logs build-configuration chatter to stdout at load time, which would corrupt a CLI's output: it is
 * silenced here.
 */
// opencv4nodejs's "external memory tracking" Mat allocator calls V8's AdjustAmountOfExternalAllocatedMemory from
// Mat destructors, which run inside garbage collection (weak callbacks): that starts a GC within the GC. Seen here
// as V8 aborting ("Check failed: marking_done_", reproduced every time by resizing each frame of vtest.avi) and,
// with incremental marking off, as a deadlock on cppgc's process mutex (gdb: Mat::~Mat → ReportExternalMemoryPressure
// → CollectGarbage inside InvokeFirstPassWeakCallbacks). The addon's own switch turns that allocator off at load;
// native Mat memory is then freed by explicit release() (the pipeline releases what it allocates) or by GC.
process.env['OPENCV4NODEJS_DISABLE_EXTERNAL_MEM_TRACKING'] ??= '1';

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
export type Net = import('@u4/opencv4nodejs').Net;

const loaded = cvRequire('@u4/opencv4nodejs') as { default?: CV } & CV;
/** The OpenCV binding (OpenCV 4.x through @u4/opencv4nodejs). */
export const cv: CV = loaded.default ?? loaded;
