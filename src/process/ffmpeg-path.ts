import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { VisionpipeError } from '../errors.js';

export interface FfmpegLocation {
  path: string;
  /** Where it was found, for the log: `ffmpeg-static`, `FFMPEG_PATH` or `PATH`. */
  via: 'ffmpeg-static' | 'FFMPEG_PATH' | 'PATH';
}

/**
 * Finds ffmpeg: the optional `ffmpeg-static` package when its binary was downloaded at install, then the
 * FFMPEG_PATH variable, then `ffmpeg` on PATH (Debian's package). Lists every place tried when none works.
 */
export function locateFfmpeg(env: NodeJS.ProcessEnv = process.env): FfmpegLocation {
  const tried: string[] = [];
  try {
    const staticPath = createRequire(import.meta.url)('ffmpeg-static') as string | null;
    if (staticPath !== null && isExecutable(staticPath)) return { path: staticPath, via: 'ffmpeg-static' };
    tried.push(`ffmpeg-static: binary missing (${staticPath ?? 'no path'})`);
  } catch {
    tried.push('ffmpeg-static: not installed');
  }
  const fromEnv = env['FFMPEG_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (isExecutable(fromEnv)) return { path: fromEnv, via: 'FFMPEG_PATH' };
    tried.push(`FFMPEG_PATH=${fromEnv}: not an executable file`);
  }
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'ffmpeg');
    if (dir !== '' && isExecutable(candidate)) return { path: candidate, via: 'PATH' };
  }
  tried.push('PATH: no ffmpeg');
  throw new VisionpipeError('VP_FFMPEG_NOT_FOUND', 'ffmpeg was not found', { value: tried });
}

/** ffprobe next to the ffmpeg found (Debian ships both), else on PATH. */
export function locateFfprobe(ffmpeg: FfmpegLocation): string {
  const sibling = ffmpeg.path.replace(/ffmpeg$/, 'ffprobe');
  return sibling !== ffmpeg.path && existsSync(sibling) ? sibling : 'ffprobe';
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
