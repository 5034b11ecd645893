/**
 * Hides credentials in a URL (`rtsp://user:secret@host/…` → `rtsp://user:***@host/…`), and in any text that
 * quotes it. Every id, log line, event, error and metric label of a source goes through this.
 */
export function redactUri(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]+):([^@/\s]*)@/gi, '$1$2:***@');
}

/** True for sources that produce frames in real time: network streams and cameras. */
export function isLiveUri(uri: string): boolean {
  return /^(rtsps?|rtmps?|https?|udp|tcp|srt):\/\//i.test(uri) || /^\/dev\/video\d+$/.test(uri) || /^\d+$/.test(uri);
}
