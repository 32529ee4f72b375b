/**
 * The kernel side of rollouts (kernel-images/): two real ISOs built from Debian packages (a GOOD
 * one whose init prints `GITFS-BOOT-OK <version>` and powers off, a BAD one whose init exits so
 * the kernel panics); the qemu hook boots them under software emulation (TCG) and must bless the
 * first, fail the second well before the deadline and roll back; the grub and kexec hooks run in
 * a fake root (GITFS_ROOT) and must write the files and plan the commands the README describes.
 *
 * Runs as root: the build script installs xorriso, cpio and qemu-system-x86 with apt-get when
 * missing, and keeps the downloaded .deb files in $GITFS_DEB_CACHE (default
 * /var/cache/gitfs-test-debs), so that only the first run downloads the kernel package.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suiteDirs } from '../support/tmp.js';
import { run, show, type Run } from '../support/run.js';

const KERNEL_IMAGES = fileURLToPath(new URL('../../../kernel-images/', import.meta.url));
const BUILD = join(KERNEL_IMAGES, 'build-test-isos.sh');
const HOOKS = join(KERNEL_IMAGES, 'hooks');
const DEB_CACHE = process.env['GITFS_DEB_CACHE'] ?? '/var/cache/gitfs-test-debs';
const GOOD_VERSION = '6.1.0-gitfs.1';
const CHANNEL = 'kernel/stable';
/** The health deadline the qemu runs get: a boot under TCG takes about 8 s on 2 cores. */
const DEADLINE_MS = 120_000;

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

/** The first line of a file, or undefined when it does not exist. */
function firstLine(path: string): string | undefined {
  return existsSync(path) ? readText(path).split('\n')[0] : undefined;
}

/** Whether a process runs (and is not a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = readText(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X' && state !== '';
  } catch {
    return false;
  }
}

interface Iso {
  readonly path: string;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
  readonly manifest: string;
}

interface Isos {
  readonly kernelPackage: string;
  readonly kernelRelease: string;
  readonly cmdline: string;
  readonly good: Iso;
  readonly bad: Iso;
}

describe('kernel-images: test ISOs, the qemu hook booting them, the grub and kexec hooks in a fake root', function () {
  this.timeout(180_000);
  /** State directories handed to hooks: the after hook stops any VM whose pid file is in one. */
  const stateDirs: string[] = [];
  const tmp = suiteDirs(async () => {
    for (const dir of stateDirs) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (!/^qemu-.*\.pid$/.test(name)) continue;
        const pidfile = join(dir, name);
        const pid = Number(firstLine(pidfile));
        if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) continue;
        // only a qemu started with this very pid file, never a recycled pid
        const cmdline = readText(`/proc/${pid}/cmdline`).split('\0');
        if (!cmdline.includes(pidfile)) continue;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          continue;
        }
        for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  let isos: Isos;
  let out = '';

  before(async function () {
    // the first run on a machine installs packages and downloads about 72 MB of .deb files
    this.timeout(1_200_000);
    out = tmp.make('gitfs-kernel-isos-');
    mkdirSync(DEB_CACHE, { recursive: true });
    const r = await run('bash', [BUILD, '--with-qemu', out, GOOD_VERSION], { ...process.env, GITFS_DEB_CACHE: DEB_CACHE }, 1_150_000);
    assert.equal(r.code, 0, `build-test-isos.sh failed: ${show(r)}`);
    isos = JSON.parse(readText(join(out, 'isos.json'))) as Isos;
    console.log(`      ISOs built in ${r.ms} ms: good ${isos.good.size} bytes, bad ${isos.bad.size} bytes (kernel ${isos.kernelRelease})`);
  });

  /** A fresh per-channel state directory, as the agent gives GITFS_STATE. */
  function stateDir(): string {
    const dir = tmp.make('gitfs-kernel-state-');
    stateDirs.push(dir);
    return dir;
  }

  /** The environment of one hook call for an image (or for none: a rollback to nothing). */
  function hookEnv(state: string, iso: Iso | undefined, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      GITFS_CHANNEL: CHANNEL,
      GITFS_COMMIT: 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00',
      GITFS_KIND: 'kernel',
      GITFS_STATE: state,
      GITFS_VERSION: iso?.version ?? '',
      GITFS_PAYLOAD: iso?.path ?? '',
      GITFS_MANIFEST: iso?.manifest ?? '',
      GITFS_CMDLINE: iso === undefined ? '' : isos.cmdline,
      GITFS_PREVIOUS: '',
      GITFS_DEADLINE_MS: String(DEADLINE_MS),
    };
    return { ...env, ...extra };
  }

  function hook(name: string, action: string, env: NodeJS.ProcessEnv, timeoutMs = DEADLINE_MS + 30_000): Promise<Run> {
    return run(join(HOOKS, name), [action], env, timeoutMs);
  }

  /** The pid recorded for a version's VM, if any, and whether it still runs. */
  function vm(state: string, version: string): { pidfile: boolean; running: boolean } {
    const pidfile = join(state, `qemu-${version}.pid`);
    const pid = Number(firstLine(pidfile));
    return { pidfile: existsSync(pidfile), running: Number.isInteger(pid) && pid > 0 && alive(pid) };
  }

  it('builds a GOOD and a BAD ISO with the layout, manifests and version names the hooks expect, the same bytes every time', async function () {
    for (const [kind, iso] of [['good', isos.good], ['bad', isos.bad]] as const) {
      assert.equal(iso.path, join(out, `${kind}.iso`));
      assert.equal(statSync(iso.path).size, iso.size);
      assert.ok(iso.size > 4 << 20 && iso.size < 32 << 20, `${kind}.iso is ${iso.size} bytes`);
      assert.equal(sha256(iso.path), iso.sha256);
      const manifest = JSON.parse(readText(iso.manifest)) as Record<string, unknown>;
      assert.deepEqual(manifest, { version: iso.version, sha256: iso.sha256, kind: 'kernel', cmdline: isos.cmdline });
      // an ISO 9660 image, with the El Torito boot record of isolinux, and an MBR for USB sticks
      const head = readFileSync(iso.path).subarray(0, 0x8800);
      assert.equal(head.subarray(0x8001, 0x8006).toString('latin1'), 'CD001', `${kind}.iso has no ISO 9660 descriptor`);
      assert.equal(head.readUInt16LE(510), 0xaa55, `${kind}.iso has no hybrid MBR`);
    }
    assert.equal(isos.good.version, GOOD_VERSION);
    assert.equal(isos.bad.version, `${GOOD_VERSION}-bad`);
    assert.match(isos.kernelPackage, /^linux-image-\d.*-amd64$/);
    const again = tmp.make('gitfs-kernel-isos-again-');
    const r = await run('bash', [BUILD, again, GOOD_VERSION], { ...process.env, GITFS_DEB_CACHE: DEB_CACHE }, 600_000);
    assert.equal(r.code, 0, show(r));
    console.log(`      rebuilt from the .deb cache in ${r.ms} ms`);
    assert.equal(sha256(join(again, 'good.iso')), isos.good.sha256, 'the GOOD ISO differs between two builds');
    assert.equal(sha256(join(again, 'bad.iso')), isos.bad.sha256, 'the BAD ISO differs between two builds');
  });

  it('qemu: the GOOD ISO boots, prints its marker, health passes and `current` names it; no VM is left', async function () {
    const state = stateDir();
    const env = hookEnv(state, isos.good);
    const apply = await hook('qemu', 'apply', env, 90_000);
    assert.equal(apply.code, 0, show(apply));
    assert.equal(firstLine(join(state, 'current')), isos.good.version);
    assert.equal(vm(state, isos.good.version).running, true, 'apply left no VM running');
    const health = await hook('qemu', 'health', env);
    assert.equal(health.code, 0, show(health));
    console.log(`      GOOD ISO: marker after ${health.ms} ms of health (apply took ${apply.ms} ms)`);
    const serial = readText(join(state, `serial-${isos.good.version}.log`));
    assert.ok(serial.split(/\r?\n/).includes(`GITFS-BOOT-OK ${isos.good.version}`), `no marker line in the serial log:\n${serial}`);
    assert.match(serial, new RegExp(`gitfs test image ${isos.good.version.replace(/\./g, '\\.')}: kernel ${isos.kernelRelease}`));
    assert.equal(firstLine(join(state, 'current')), isos.good.version);
    assert.deepEqual(vm(state, isos.good.version), { pidfile: false, running: false });
  });

  it('qemu: the BAD ISO panics; health fails well before the deadline, rollback makes the GOOD version current again', async function () {
    const state = stateDir();
    writeFileSync(join(state, 'current'), `${isos.good.version}\n`);
    const env = hookEnv(state, isos.bad, { GITFS_PREVIOUS: isos.good.version });
    const apply = await hook('qemu', 'apply', env, 90_000);
    assert.equal(apply.code, 0, show(apply));
    assert.equal(firstLine(join(state, 'current')), isos.bad.version);
    const health = await hook('qemu', 'health', env);
    assert.equal(health.code, 1, show(health));
    assert.ok(health.ms < DEADLINE_MS / 2, `the failure took ${health.ms} ms, the deadline is ${DEADLINE_MS} ms`);
    console.log(`      BAD ISO: failure detected after ${health.ms} ms of health (deadline ${DEADLINE_MS} ms)`);
    assert.match(health.stderr, /qemu is not running and the serial console never showed/);
    const serial = readText(join(state, `serial-${isos.bad.version}.log`));
    assert.doesNotMatch(serial, /GITFS-BOOT-OK/);
    assert.match(serial, /Kernel panic - not syncing: Attempted to kill init/);
    assert.deepEqual(vm(state, isos.bad.version), { pidfile: false, running: false });

    const rollback = await hook('qemu', 'rollback', hookEnv(state, isos.good, { GITFS_PREVIOUS: isos.good.version }), 60_000);
    assert.equal(rollback.code, 0, show(rollback));
    assert.equal(firstLine(join(state, 'current')), isos.good.version);
    assert.equal(existsSync(join(state, 'images', isos.bad.version)), false, 'the failed version was kept');
  });

  it('qemu: health gives up at the deadline and stops the VM; a rollback with no previous version removes `current`', async function () {
    const state = stateDir();
    const env = hookEnv(state, isos.good, { GITFS_DEADLINE_MS: '1000' });
    const apply = await hook('qemu', 'apply', env, 90_000);
    assert.equal(apply.code, 0, show(apply));
    // TCG needs several seconds to reach the marker: one second is too little
    const health = await hook('qemu', 'health', env, 30_000);
    assert.equal(health.code, 1, show(health));
    assert.match(health.stderr, /within the deadline \(1000 ms\)/);
    assert.ok(health.ms < 1000 + 8000, `health took ${health.ms} ms for a 1000 ms deadline`);
    assert.deepEqual(vm(state, isos.good.version), { pidfile: false, running: false });
    const rollback = await hook('qemu', 'rollback', hookEnv(state, undefined), 60_000);
    assert.equal(rollback.code, 0, show(rollback));
    assert.equal(existsSync(join(state, 'current')), false);
  });

  it('qemu: apply refuses a payload that does not match the manifest, an image of another version, another kind', async function () {
    const state = stateDir();
    const wrongSha = join(tmp.make('gitfs-kernel-manifest-'), 'manifest.json');
    writeFileSync(wrongSha, JSON.stringify({ version: isos.good.version, sha256: '0'.repeat(64), kind: 'kernel', cmdline: '' }));
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [hookEnv(state, isos.good, { GITFS_MANIFEST: wrongSha }), /has SHA-256 [0-9a-f]{64}, the manifest says 0{64}: refusing it/],
      [hookEnv(state, isos.good, { GITFS_KIND: 'site' }), /handles kernel images only/],
      [hookEnv(state, { ...isos.bad, version: isos.good.version }), /the manifest is for version/],
      [hookEnv(state, isos.good, { GITFS_VERSION: '../../etc' }), /is not a version name/],
      [hookEnv(state, isos.good, { GITFS_CMDLINE: 'init=/bin/sh; reboot' }), /GITFS_CMDLINE has characters/],
    ];
    for (const [env, message] of cases) {
      const r = await hook('qemu', 'apply', env, 60_000);
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, message);
    }
    assert.deepEqual(readdirSync(state), [], 'a refused apply left files or a VM behind');
  });

  it('the GOOD ISO also boots as a BIOS CD-ROM (isolinux) in qemu', async function () {
    const dir = tmp.make('gitfs-kernel-cdrom-');
    const serial = join(dir, 'serial.log');
    const r = await run(
      'qemu-system-x86_64',
      ['-machine', 'accel=tcg', '-m', '256', '-display', 'none', '-nic', 'none', '-monitor', 'none', '-no-reboot', '-serial', `file:${serial}`, '-cdrom', isos.good.path],
      { PATH: process.env['PATH'] },
      90_000,
    );
    assert.equal(r.code, 0, show(r));
    console.log(`      GOOD ISO booted from the CD-ROM and powered off in ${r.ms} ms`);
    assert.ok(readText(serial).split(/\r?\n/).includes(`GITFS-BOOT-OK ${isos.good.version}`), readText(serial));
  });

  /** A fake root as the grub and kexec hooks read it: boot id, /proc/cmdline, /etc/default/grub. */
  function fakeRoot(grubDefault = 'saved'): { root: string; boot(cmdline: string): void; log(): string[] } {
    const root = tmp.make('gitfs-kernel-root-');
    mkdirSync(join(root, 'proc/sys/kernel/random'), { recursive: true });
    mkdirSync(join(root, 'etc/default'), { recursive: true });
    mkdirSync(join(root, 'etc/gitfs'), { recursive: true });
    mkdirSync(join(root, 'boot/grub'), { recursive: true });
    writeFileSync(join(root, 'etc/default/grub'), `GRUB_DEFAULT=${grubDefault}\nGRUB_TIMEOUT=5\n`);
    writeFileSync(join(root, 'etc/gitfs/kernel-cmdline'), '# site settings\nroot=UUID=0f1e2d3c ro\n');
    writeFileSync(join(root, 'boot/grub/grubenv'), `# GRUB Environment Block\nsaved_entry=debian-6.1\n${'#'.repeat(900)}`);
    let boots = 0;
    const boot = (cmdline: string): void => {
      boots += 1;
      writeFileSync(join(root, 'proc/sys/kernel/random/boot_id'), `00000000-0000-4000-8000-${String(boots).padStart(12, '0')}\n`);
      writeFileSync(join(root, 'proc/cmdline'), `${cmdline}\n`);
    };
    boot('BOOT_IMAGE=/vmlinuz-6.1.0-57-amd64 root=UUID=0f1e2d3c ro quiet');
    const log = (): string[] => (existsSync(join(root, 'gitfs-dry-run.log')) ? readText(join(root, 'gitfs-dry-run.log')).trim().split('\n') : []);
    return { root, boot, log };
  }

  const cmdlineOf = (version: string): string => `root=UUID=0f1e2d3c ro ${isos.cmdline} gitfs.version=${version} gitfs.channel=${CHANNEL}`;

  it('grub (GITFS_ROOT): installs in /boot/gitfs/<version>/, writes the menu generator, one-shot boot, default after health, rollback', async function () {
    const { root, boot, log } = fakeRoot();
    const state = stateDir();
    const good = isos.good.version;
    const bad = isos.bad.version;
    const apply = await hook('grub', 'apply', hookEnv(state, isos.good, { GITFS_ROOT: root }), 60_000);
    assert.equal(apply.code, 0, show(apply));
    const dir = join(root, 'boot/gitfs', good);
    assert.deepEqual(readdirSync(dir).sort(), ['channel', 'cmdline', 'gitfs-image.json', 'initrd.img', 'manifest.json', 'vmlinuz']);
    assert.ok(statSync(join(dir, 'vmlinuz')).size > 1 << 20);
    assert.equal(readText(join(dir, 'cmdline')), `${cmdlineOf(good)}\n`);
    assert.equal(readText(join(dir, 'channel')), `${CHANNEL}\n`);
    assert.equal(readText(join(dir, 'manifest.json')), readText(isos.good.manifest));
    assert.deepEqual(log(), ['update-grub', `grub-reboot gitfs-${good}`]);
    assert.equal(firstLine(join(state, 'staged')), good);
    assert.equal(firstLine(join(state, 'grub-default-before')), 'debian-6.1');

    // the generator update-grub runs: one entry per installed version, with the id grub-reboot uses
    const generator = join(root, 'etc/grub.d/42_gitfs');
    accessSync(generator, constants.X_OK);
    const menu = await run('sh', [generator], { PATH: process.env['PATH'], GITFS_GRUB_DIR: join(root, 'boot/gitfs'), GITFS_GRUB_PLAIN: '1' }, 30_000);
    assert.equal(menu.code, 0, show(menu));
    assert.match(menu.stdout, new RegExp(`^menuentry 'gitfs ${CHANNEL} ${good}' --class gnu-linux --id 'gitfs-${good}' \\{$`, 'm'));
    assert.ok(menu.stdout.includes(`\tlinux /boot/gitfs/${good}/vmlinuz ${cmdlineOf(good)}\n`), menu.stdout);
    assert.ok(menu.stdout.includes(`\tinitrd /boot/gitfs/${good}/initrd.img\n`), menu.stdout);

    // health before the restart: staged, not running (75); after it: running, made the default
    const before = await hook('grub', 'health', hookEnv(state, isos.good, { GITFS_ROOT: root }), 30_000);
    assert.equal(before.code, 75, show(before));
    boot(`BOOT_IMAGE=/boot/gitfs/${good}/vmlinuz ${cmdlineOf(good)}`);
    const health = await hook('grub', 'health', hookEnv(state, isos.good, { GITFS_ROOT: root }), 30_000);
    assert.equal(health.code, 0, show(health));
    assert.equal(log().at(-1), `grub-set-default gitfs-${good}`);
    assert.equal(firstLine(join(state, 'current')), good);
    assert.equal(existsSync(join(state, 'staged')), false);

    // the BAD version: apply with GITFS_REBOOT=1 reboots; the one-shot boot fails, GRUB falls back
    const badEnv = hookEnv(state, isos.bad, { GITFS_ROOT: root, GITFS_PREVIOUS: good, GITFS_REBOOT: '1' });
    const applyBad = await hook('grub', 'apply', badEnv, 60_000);
    assert.equal(applyBad.code, 0, show(applyBad));
    assert.deepEqual(log().slice(-3), ['update-grub', `grub-reboot gitfs-${bad}`, 'reboot']);
    const bothMenus = await run('sh', [generator], { PATH: process.env['PATH'], GITFS_GRUB_DIR: join(root, 'boot/gitfs'), GITFS_GRUB_PLAIN: '1' }, 30_000);
    assert.equal((bothMenus.stdout.match(/^menuentry /gm) ?? []).length, 2, bothMenus.stdout);
    boot(`BOOT_IMAGE=/boot/gitfs/${good}/vmlinuz ${cmdlineOf(good)}`);
    const badHealth = await hook('grub', 'health', badEnv, 30_000);
    assert.equal(badHealth.code, 1, show(badHealth));
    assert.match(badHealth.stderr, new RegExp(`runs '${good.replace(/\./g, '\\.')}', not ${bad.replace(/\./g, '\\.')}`));
    const rollback = await hook('grub', 'rollback', hookEnv(state, isos.good, { GITFS_ROOT: root, GITFS_PREVIOUS: good }), 60_000);
    assert.equal(rollback.code, 0, show(rollback));
    assert.deepEqual(log().slice(-3), ['grub-editenv /boot/grub/grubenv unset next_entry', 'update-grub', `grub-set-default gitfs-${good}`]);
    assert.deepEqual(readdirSync(join(root, 'boot/gitfs')), [good]);
    assert.equal(firstLine(join(state, 'current')), good);

    // with no previous version, rollback restores the default from before gitfs
    const none = await hook('grub', 'rollback', hookEnv(state, undefined, { GITFS_ROOT: root }), 60_000);
    assert.equal(none.code, 0, show(none));
    assert.equal(log().at(-1), 'grub-set-default debian-6.1');
    assert.equal(existsSync(join(state, 'current')), false);
  });

  it('grub (GITFS_ROOT): refuses to apply unless GRUB_DEFAULT=saved, and writes nothing', async function () {
    const { root, log } = fakeRoot('0');
    const state = stateDir();
    const r = await hook('grub', 'apply', hookEnv(state, isos.good, { GITFS_ROOT: root }), 60_000);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /one-shot boots need GRUB_DEFAULT=saved/);
    assert.equal(existsSync(join(root, 'boot/gitfs')), false);
    assert.deepEqual(log(), []);
  });

  it('every kernel hook refuses an image whose kernel is a symlink (into this host), touching nothing it points at', async function () {
    const dir = tmp.make('gitfs-kernel-symlink-');
    const host = join(dir, 'host-kernel');
    writeFileSync(host, 'the host kernel\n', { mode: 0o600 });
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'boot'), { recursive: true });
    symlinkSync(host, join(tree, 'boot/vmlinuz'));
    writeFileSync(join(tree, 'boot/initrd.img'), 'initrd\n');
    writeFileSync(join(tree, 'gitfs-image.json'), `{"version":"${isos.good.version}","cmdline":""}\n`);
    const path = join(dir, 'linked.iso');
    const made = await run('xorriso', ['-as', 'mkisofs', '-R', '-quiet', '-o', path, tree], process.env, 60_000);
    assert.equal(made.code, 0, made.stderr);
    const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ version: isos.good.version, sha256, kind: 'kernel', cmdline: '' }));
    const linked: Iso = { path, version: isos.good.version, sha256, size: statSync(path).size, manifest };
    for (const name of ['qemu', 'grub', 'kexec']) {
      const { root } = fakeRoot();
      const state = stateDir();
      const r = await hook(name, 'apply', hookEnv(state, linked, { GITFS_ROOT: root }), 60_000);
      assert.equal(r.code, 1, `${name}: ${show(r)}`);
      assert.match(r.stderr, /vmlinuz is not a regular file/, name);
    }
    assert.equal(statSync(host).mode & 0o777, 0o600, 'the file the link pointed at is untouched');
  });

  it('kexec (GITFS_ROOT): loads the kernel with its command line, jumps only with GITFS_REBOOT=1, health, rollback to the previous kernel', async function () {
    const { root, boot, log } = fakeRoot();
    const state = stateDir();
    const good = isos.good.version;
    const bad = isos.bad.version;
    const load = (v: string): string =>
      `kexec -l ${state}/kexec/${v}/vmlinuz --initrd=${state}/kexec/${v}/initrd.img --command-line=${cmdlineOf(v)}`;

    const apply = await hook('kexec', 'apply', hookEnv(state, isos.good, { GITFS_ROOT: root }), 60_000);
    assert.equal(apply.code, 0, show(apply));
    assert.deepEqual(log(), [load(good)]);
    assert.deepEqual(readdirSync(join(state, 'kexec', good)).sort(), ['channel', 'cmdline', 'gitfs-image.json', 'initrd.img', 'manifest.json', 'vmlinuz']);
    const before = await hook('kexec', 'health', hookEnv(state, isos.good, { GITFS_ROOT: root }), 30_000);
    assert.equal(before.code, 75, show(before));
    boot(cmdlineOf(good));
    const health = await hook('kexec', 'health', hookEnv(state, isos.good, { GITFS_ROOT: root }), 30_000);
    assert.equal(health.code, 0, show(health));
    assert.equal(firstLine(join(state, 'current')), good);

    const badEnv = hookEnv(state, isos.bad, { GITFS_ROOT: root, GITFS_PREVIOUS: good, GITFS_REBOOT: '1' });
    const applyBad = await hook('kexec', 'apply', badEnv, 60_000);
    assert.equal(applyBad.code, 0, show(applyBad));
    assert.deepEqual(log().slice(1), [load(bad), 'kexec -e']);
    // the bad kernel "runs" (say it came up but the agent's own checks failed): roll back to good
    boot(cmdlineOf(bad));
    const rollback = await hook('kexec', 'rollback', hookEnv(state, isos.good, { GITFS_ROOT: root, GITFS_PREVIOUS: good, GITFS_REBOOT: '1' }), 60_000);
    assert.equal(rollback.code, 0, show(rollback));
    assert.deepEqual(log().slice(3), ['kexec -u', load(good), 'kexec -e']);
    assert.equal(firstLine(join(state, 'current')), good);
    assert.equal(existsSync(join(state, 'staged')), false);
  });
});
