/**
 * The file name form of a source id, for `{source}` in output paths: `rtsp://u:***@host:8554/cam` →
 * `rtsp_u_host_8554_cam`, `clip.mp4` → `clip`. Different ids can share one (`…/cam` and `…/cam/`): openSources
 * keeps both unique, so two sources never write the same files.
 */
export function sourceFileName(id: string): string {
  const name = id.replace(/\.(mp4|avi|mkv|mov|webm|m4v|ts|mpg|mpeg)$/i, '').replace(/:\*\*\*@/g, '_').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '');
  // Never empty, and never `.` or `..`: it is used as a file and folder name.
  return /^\.*$/.test(name) ? 'source' : name;
}
