// vigild's exit statuses, in one table: 0 stopped as asked, 1 a fatal error,
// 64 a wrong command line, 78 a configuration that does not load. 78 is
// sysexits' EX_CONFIG; the unit's RestartPreventExitStatus=78 keeps systemd
// from restarting a vigild whose configuration is wrong.
export const EXIT = {
  ok: 0,
  fatal: 1,
  usage: 64, // EX_USAGE
  config: 78, // EX_CONFIG
} as const;
