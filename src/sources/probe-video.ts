import ffmpeg from 'fluent-ffmpeg';

/** What ffprobe says about a file's first video stream. */
export interface VideoProbe {
  /** Frame size after the rotation the container asks for (as both OpenCV and ffmpeg deliver the frames). */
  sizeWh: [number, number];
  /** Nominal frames per second, or null when the container gives none. */
  fps: number | null;
  /**
   * The frame count the container declares, only when it is an exact count that decoding will reach; null when
   * the container has none, or has one that decoding would not reach (see frameCountOf).
   */
  declaredFrameCount: number | null;
  /** e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `avi`. */
  formatName: string;
}

/** Rejects with ffprobe's message (and stderr) when it cannot read the file, or when it has no video stream. */
export function probeVideo(path: string, ffprobePath: string): Promise<VideoProbe> {
  return new Promise<VideoProbe>((resolve, reject) => {
    ffmpeg(path)
      .setFfprobePath(ffprobePath)
      .ffprobe((err: unknown, data: ffmpeg.FfprobeData | undefined) => {
        if (err !== null && err !== undefined) return reject(err instanceof Error ? err : new Error(String(err)));
        // A cover picture in an mp4 / mkv is a "video" stream of one frame: never the one to read.
        const stream = data?.streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
        if (data === undefined || stream === undefined) return reject(new Error('ffprobe found no video stream'));
        const width = Number(stream.width);
        const height = Number(stream.height);
        if (!(width > 0 && height > 0)) return reject(new Error(`ffprobe gave no frame size (${stream.width}x${stream.height})`));
        const fps = frameRateOf(stream);
        const quarterTurn = Math.abs(rotationOf(stream)) % 180 === 90;
        resolve({
          sizeWh: quarterTurn ? [height, width] : [width, height],
          fps,
          declaredFrameCount: frameCountOf(stream, fps),
          formatName: String(data.format.format_name ?? ''),
        });
      });
  });
}

/**
 * The stream's nb_frames, only when decoding will deliver exactly that many frames. Measured here (ffmpeg 5.1,
 * OpenCV 4.6, CAP_PROP_FRAME_COUNT vs frames decoded to the end):
 * - avi (vtest.avi, mpeg4), mp4 (libx264, +faststart or not): nb_frames declared and exact (795, 7, 37, 41 at
 *   10 / 25 / 29.97 fps), and still declared when the tail is cut off (50 declared, 7 decoded): the case to catch.
 * - mkv, webm (vp8, vp9, x264, ffv1), fragmented mp4, MPEG-TS: no nb_frames. OpenCV then reports
 *   round(duration × fps), an estimate: exact for plain constant-rate files, but 287 for 37 frames with a
 *   timestamp offset, 63 for 50 variable-rate frames, and a huge negative number for a webm written to a pipe.
 * - mp4 cut with `-ss … -c copy` (an edit list): nb_frames 75 counts samples the decoder then skips; 67 decoded.
 * So the count is trusted only when declared and consistent (±1) with the stream's own duration × frame rate;
 * otherwise null (a truncation check would raise false alarms).
 */
function frameCountOf(stream: ffmpeg.FfprobeStream, fps: number | null): number | null {
  const declared = Number(stream.nb_frames);
  const durationS = Number(stream.duration);
  if (!Number.isSafeInteger(declared) || declared <= 0 || fps === null || !(durationS > 0)) return null;
  return Math.abs(declared - durationS * fps) <= 1 ? declared : null;
}

/** Like FFmpeg's av_guess_frame_rate: r_frame_rate, unless it is a timebase-like 210+ with a sane average. */
function frameRateOf(stream: ffmpeg.FfprobeStream): number | null {
  const r = ratio(stream.r_frame_rate);
  const avg = ratio(stream.avg_frame_rate);
  if (r !== null && !(avg !== null && avg < 70 && r > 210)) return r;
  return avg;
}

/** `30000/1001` or `25` → frames per second; null for `0/0` and anything unparsable. */
function ratio(text: string | undefined): number | null {
  const match = /^(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?$/.exec(String(text ?? ''));
  if (match === null) return null;
  const value = Number(match[1]) / (match[2] === undefined ? 1 : Number(match[2]));
  return Number.isFinite(value) && value > 0 ? value : null;
}

/**
 * Degrees the container asks players to rotate by: the display matrix (ffprobe's flat output puts its `rotation`
 * among the stream's fields, which fluent-ffmpeg keeps) or the older `rotate` tag.
 */
function rotationOf(stream: ffmpeg.FfprobeStream): number {
  const fields = stream as unknown as Record<string, unknown>;
  const value = Number(fields['rotation'] ?? stream.tags?.['rotate'] ?? 0);
  return Number.isFinite(value) ? Math.round(value) : 0;
}
