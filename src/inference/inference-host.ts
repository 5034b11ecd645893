import type { InferenceWorkerHost } from './worker-host.js';

/**
 * Where inference runs, as the pipeline sees it: the worker thread (onnxruntime, TF.js) or OpenCV DNN on the
 * main thread's libuv pool. Tests inject fakes through createPipeline's `inject.host`.
 */
export type InferenceHost = Pick<InferenceWorkerHost, 'run' | 'info' | 'close'>;
