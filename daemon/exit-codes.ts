// vigild's exit statuses, in one table (DESIGN.md "Commands"). 78 is
// sysexits' EX_CONFIG; the unit's RestartPreventExitStatus=78 keeps systemd
// from restarting a vigild whose configuration is wrong.
export const EXIT = {
  ok: 0,
  fatal: 1,
  usage: 64, // EX_USAGE
  config: 78, // EX_CONFIG
} as const;
