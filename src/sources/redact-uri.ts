/**
 * Hides credentials in a URL (`rtsp://user:secret@host/…` → `rtsp://user:***@host/…`), and in any text that
 * quotes it. Every id, log line, event, error and metric label of a source goes through this.
 */
export function redactUri(text: string): string {
  return (
    text
      // user:password@ — the password may itself hold @ (the last @ before the host ends it) or be empty-named.
      .replace(/([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^/\s]*)@(?=[^@/\s]*(?:[/?#\s]|$))/gi, (_m, scheme: string, user: string) => `${scheme}${user}:***@`)
      // Cameras that take credentials in the path or the query (XMEye: …/user=admin&password=x&channel=1…).
      .replace(/([?&/;](?:password|passwd|pwd|pass)=)[^&;\s]*/gi, '$1***')
  );
}

/** True for sources that produce frames in real time: network streams and cameras. */
export function isLiveUri(uri: string): boolean {
  return /^(rtsps?|rtmps?|https?|udp|tcp|srt):\/\//i.test(uri) || /^\/dev\/video\d+$/.test(uri) || /^\d+$/.test(uri);
}
