import type { SourceConfig } from '../../config/schema.js';
import { cv, type Mat } from '../../cv.js';

/** The part of cv.VideoCapture a capture loop uses (tests pass a scripted fake). */
export interface Capture {
  readAsync(): Promise<Mat>;
  get(prop: number): number;
  release(): void;
}

export type OpenCapture = (uri: string, options: SourceConfig['capture']) => Capture;

/**
 * Opens a stream with OpenCV's FFmpeg backend (or V4L2 for /dev/videoN and camera indexes). FFmpeg options are
 * passed the only way OpenCV 4.6 takes them from Node: the OPENCV_FFMPEG_CAPTURE_OPTIONS variable, read at open.
 * Synchronous (it blocks until the camera answers or FFmpeg's timeout fires): it runs in the capture process.
 */
export function openVideoCapture(uri: string, options: SourceConfig['capture']): Capture {
  const camera = /^\d+$/.test(uri) ? Number(uri) : /^\/dev\/video(\d+)$/.exec(uri)?.[1];
  if (camera !== undefined) return new cv.VideoCapture(Number(camera), cv.CAP_V4L2);
  const ffmpegOptions = [
    `rtsp_transport;${options.transport}`,
    // FFmpeg's socket timeout, in microseconds: bounds both connecting and each read.
    `timeout;${Math.max(options.openTimeoutMs, options.readTimeoutMs) * 1000}`,
    ...(options.lowDelay ? ['fflags;nobuffer', 'flags;low_delay'] : []),
  ];
  process.env['OPENCV_FFMPEG_CAPTURE_OPTIONS'] = ffmpegOptions.join('|');
  return new cv.VideoCapture(uri, cv.CAP_FFMPEG);
}
