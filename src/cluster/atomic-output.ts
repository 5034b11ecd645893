import { readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

/**
 * A file job writes each output under a temporary name in the same folder as the final one (same file system, so
 * the rename is atomic), named after the job and the attempt: `.<stem>.vpjob-<jobId>-<attempt>-<worker><ext>`
 * (the sinks add `.partial` while writing). Only a complete output is renamed to its final name, so readers see
 * no file or a complete one; a retried job renames its own complete copy over it, so there is always exactly one.
 */
export function attemptPath(finalPath: string, jobId: string, attempt: number, worker: string): string {
  const ext = extname(finalPath);
  const stem = basename(finalPath, ext);
  return join(dirname(finalPath), `.${stem}${jobMarker(jobId)}${attempt}-${safe(worker)}${ext}`);
}

/** Moves a finished attempt's output to its final name (atomic: same folder). */
export function publishOutput(attempt: string, finalPath: string): void {
  renameSync(attempt, finalPath);
}

/**
 * Deletes what earlier attempts of this job left for `finalPath` (a worker killed mid-job leaves its temporary
 * file, or its `.partial`), except `keep`. Returns the names removed.
 */
export function removeStaleAttempts(finalPath: string, jobId: string, keep: string | null = null): string[] {
  const dir = dirname(finalPath);
  const ext = extname(finalPath);
  const prefix = `.${basename(finalPath, ext)}${jobMarker(jobId)}`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (!name.startsWith(prefix) || path === keep || (keep !== null && path === `${keep}.partial`)) continue;
    rmSync(path, { force: true });
    removed.push(name);
  }
  return removed;
}

function jobMarker(jobId: string): string {
  return `.vpjob-${safe(jobId)}-`;
}

function safe(text: string): string {
  return text.replace(/[^A-Za-z0-9_.]/g, '_');
}
