package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/target"
)

// usageError is a bad flag or configuration: the command prints one line
// and the process exits with status 2. main checks for ExitCode.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
func (e usageError) ExitCode() int { return 2 }

type targetFlags struct {
	config        string
	listen        []string
	discListen    []string
	subnqn        string
	ns            []string
	allowHosts    []string
	verbose       bool
	ctlSocket     string
	metrics       string
	capture       string
	quirks        []string
	cpus          string
	poll          bool
	readyCallback func(*target.Target) // tests
}

func newTargetCmd() *cobra.Command {
	var f targetFlags
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Serve NVMe/TCP: the reference target",
		Long: `Serve NVMe/TCP subsystems backed by memory, files or nothing (null).

With no flags it serves one subsystem, ` + target.DefaultSubsystemNQN + `, with a
256 MiB memory namespace to any host on 127.0.0.1:4420 (I/O and discovery)
and 127.0.0.1:8009 (discovery), until SIGINT or SIGTERM.

--quirk NAME gives the target a named behaviour: a deviation from the
specification (for showing that conformance checks notice it) or an
allowed personality of other targets (which they must pass):
` + quirkHelp(),
		Example: `  nvmftest target
  nvmftest target --listen 0.0.0.0:4420 --ns mem:1GiB --ns file:10GiB:/var/tmp/ns2.img
  nvmftest target --config target.yaml`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTarget(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), &f)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%v (see nvmftest target --help)", err)}
	})
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "YAML configuration `FILE` (flags below override it)")
	fl.StringArrayVar(&f.listen, "listen", nil, "serve I/O and discovery on `HOST:PORT` (repeatable; replaces the configured listeners)")
	fl.StringArrayVar(&f.discListen, "discovery-listen", nil, "serve only discovery on `HOST:PORT` (repeatable)")
	fl.StringVar(&f.subnqn, "subnqn", "", "`NQN` of the (first) subsystem")
	fl.StringArrayVar(&f.ns, "ns", nil, "namespace `BACKEND:SIZE[:PATH]`, e.g. mem:256MiB, null:1TiB, file:10GiB:/tmp/ns.img (repeatable; replaces the configured ones)")
	fl.StringArrayVar(&f.allowHosts, "allow-host", nil, "only this host `NQN` may connect (repeatable; default any host)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every connection and I/O queue too (debug); without it: controllers created and ended, refused Connects and their reasons, errors")
	fl.StringVar(&f.capture, "capture", "", "write a pcapng packet trace of every accepted connection into `DIR` (created if missing; overrides capture: in the configuration)")
	fl.StringArrayVar(&f.quirks, "quirk", nil, "give the target the quirk `NAME` (repeatable; adds to quirks: in the configuration; see above)")
	fl.StringVar(&f.ctlSocket, "ctl-socket", "", "serve the control endpoint on unix socket `PATH` (see nvmftest target ctl and target stats)")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on http://`HOST:PORT`/metrics (e.g. 127.0.0.1:9420)")
	fl.StringVar(&f.cpus, "cpus", "", cpusFlagHelp)
	fl.BoolVar(&f.poll, "poll", false, "poll the sockets instead of sleeping until data comes, as SPDK does: lower latency, but a core spins while I/O flows (an idle connection sleeps after 1ms; poll_idle: in the configuration)")
	cmd.AddCommand(newTargetCtlCmd(), newTargetStatsCmd())
	return cmd
}

// buildTargetConfig turns flags into a validated configuration.
func buildTargetConfig(f *targetFlags) (target.Config, error) {
	cfg := target.DefaultConfig()
	if f.config != "" {
		c, err := target.LoadConfig(f.config)
		if err != nil {
			return cfg, err
		}
		cfg = c
	}
	if len(f.listen) > 0 || len(f.discListen) > 0 {
		cfg.Listeners = nil
		for _, a := range f.listen {
			cfg.Listeners = append(cfg.Listeners, target.ListenerConfig{Address: a, Serve: target.ServeAll})
		}
		for _, a := range f.discListen {
			cfg.Listeners = append(cfg.Listeners, target.ListenerConfig{Address: a, Serve: target.ServeDiscovery})
		}
		for i := range cfg.Listeners {
			cfg.Listeners[i].PortID = uint16(i + 1)
		}
		// The configured port IDs name listeners --listen replaced: a
		// restriction to them cannot be kept, and dropping it would
		// expose a subsystem where its configuration says it must not be.
		for _, s := range cfg.Subsystems {
			if len(s.Ports) > 0 {
				return cfg, fmt.Errorf("subsystem %s has ports: %v in %s, which --listen/--discovery-listen would drop (they replace the configured listeners): change the listeners in the configuration instead", s.NQN, portList(s.Ports), f.config)
			}
		}
	}
	if f.subnqn != "" || len(f.ns) > 0 || len(f.allowHosts) > 0 {
		if len(cfg.Subsystems) == 0 {
			cfg.Subsystems = []target.SubsystemConfig{target.DefaultSubsystem(target.DefaultSubsystemNQN)}
		}
		s := &cfg.Subsystems[0]
		if f.subnqn != "" {
			s.NQN = f.subnqn
		}
		if len(f.allowHosts) > 0 {
			s.AllowAnyHost = false
			s.Hosts = f.allowHosts
		}
		if len(f.ns) > 0 {
			s.Namespaces = nil
			for i, spec := range f.ns {
				ns, err := parseNSFlag(spec)
				if err != nil {
					return cfg, fmt.Errorf("--ns %q: %v", spec, err)
				}
				ns.NSID = uint32(i + 1)
				s.Namespaces = append(s.Namespaces, ns)
			}
		}
	}
	if f.capture != "" {
		cfg.Capture = f.capture
	}
	if f.poll {
		cfg.Poll = true
	}
	for _, q := range f.quirks {
		if !slices.Contains(cfg.Quirks, q) {
			cfg.Quirks = append(cfg.Quirks, q)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if len(cfg.Subsystems) == 0 && f.ctlSocket == "" {
		return cfg, errors.New("no subsystems configured: the target would serve nothing (add subsystems: to the configuration, or give --ctl-socket PATH to add them with nvmftest target ctl add-subsystem)")
	}
	return cfg, nil
}

// portList writes port IDs as YAML does: [1, 2].
func portList(l []uint16) string {
	s := make([]string, len(l))
	for i, p := range l {
		s[i] = strconv.Itoa(int(p))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// quirkHelp lists the quirks, one line each, for --help.
func quirkHelp() string {
	var b strings.Builder
	for _, q := range target.Quirks() {
		fmt.Fprintf(&b, "  %-26s %-9s %s\n", q.Name, q.Kind, q.Does)
	}
	return strings.TrimRight(b.String(), "\n")
}

func parseNSFlag(spec string) (target.NamespaceConfig, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) < 2 {
		return target.NamespaceConfig{}, errors.New("want BACKEND:SIZE[:PATH] (use e.g. mem:256MiB or file:1GiB:/tmp/ns.img)")
	}
	ns := target.NamespaceConfig{Backend: parts[0], Size: target.Size(parts[1]), BlockSize: 512}
	if len(parts) == 3 {
		ns.Path = parts[2]
	}
	if ns.Backend == target.BackendFile && ns.Path == "" {
		return ns, errors.New("a file namespace needs a path (use file:SIZE:PATH)")
	}
	if _, err := ns.Size.Bytes(); err != nil {
		return ns, fmt.Errorf("%q is not a size (use e.g. 64MiB)", parts[1])
	}
	return ns, nil
}

func runTarget(ctx context.Context, stdout, stderr io.Writer, f *targetFlags) error {
	cfg, err := buildTargetConfig(f)
	if err != nil {
		return usageError{err}
	}
	pinned, err := pinCPUs(f.cpus)
	if err != nil {
		return err
	}
	// Quiet but not mute: controllers, refused Connects and errors by
	// default; every connection and queue with -v.
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := []target.Option{target.WithLogger(log)}
	if ownProcess && pinned == "" && os.Getenv("GOMAXPROCS") == "" {
		pctx, stopPlacement := context.WithCancel(context.Background())
		defer stopPlacement()
		opts = append(opts, target.WithIOQueueHook(newPlacement(pctx, log.Info).Hook))
	}
	tg, err := target.New(cfg, opts...)
	if err != nil {
		return usageError{err}
	}
	if err := tg.Start(); err != nil {
		tg.Close()
		return err
	}
	if f.ctlSocket != "" {
		stopCtl, err := serveTargetCtl(tg, f.ctlSocket)
		if err != nil {
			tg.Close()
			return err
		}
		defer stopCtl()
	}
	var metricsAddr string
	if f.metrics != "" {
		stopMetrics, addr, err := serveTargetMetrics(tg, f.metrics)
		if err != nil {
			tg.Close()
			return err
		}
		defer stopMetrics()
		metricsAddr = addr
	}
	printReach(stdout, tg)
	if pinned != "" {
		fmt.Fprintln(stdout, pinned)
	}
	if cfg.Poll {
		fmt.Fprintln(stdout, "polling: each connection's receive loop spins on its socket while I/O flows (a core busy)")
	}
	if metricsAddr != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", metricsAddr)
	}
	if f.ctlSocket != "" {
		fmt.Fprintf(stdout, "control socket %s\n  nvmftest target ctl --socket %s ports\n  nvmftest target stats --socket %s\n", f.ctlSocket, f.ctlSocket, f.ctlSocket)
	}
	if len(cfg.Subsystems) == 0 {
		fmt.Fprintln(stderr, "nvmftest: warning: no subsystems configured; add them with nvmftest target ctl --socket "+f.ctlSocket+" add-subsystem nqn=NQN")
	}
	if f.readyCallback != nil {
		f.readyCallback(tg)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	err = tg.Close()
	printSummary(stdout, tg.Stats())
	return err
}

// printSummary tells what the target served, when it stops.
func printSummary(w io.Writer, st target.Stats) {
	t := &st.Total
	refused := uint64(0)
	for _, n := range st.RefusedConnects {
		refused += n
	}
	fmt.Fprintf(w, "served for %s: %d connection(s), %d association(s); %d I/O command(s) (%d read, %d write, %d other), %s read, %s written, %d error(s); %d refused connect(s)",
		st.Uptime, st.Accepted, st.Associations, t.Commands(), t.Reads, t.Writes, t.Others,
		humanize.IBytes(t.BytesRead), humanize.IBytes(t.BytesWritten), t.Errors, refused)
	if refused > 0 {
		fmt.Fprintf(w, " (%s)", reasonList(st.RefusedConnects))
	}
	fmt.Fprintln(w)
}

// reasonList writes counts by reason, most first: "unknown subsystem: 3, ...".
func reasonList(m map[string]uint64) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return cmp.Compare(m[b], m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// printReach tells how to connect to the running target.
func printReach(w io.Writer, tg *target.Target) {
	cfg := tg.Config()
	addrs := tg.Addrs()
	fmt.Fprintln(w, "nvmftest reference target")
	for _, s := range cfg.Subsystems {
		hosts := "any host"
		if !s.AllowAnyHost {
			hosts = fmt.Sprintf("%d allowed host(s)", len(s.Hosts))
		}
		fmt.Fprintf(w, "subsystem %s (%s)\n", s.NQN, hosts)
		// The namespaces as served, with the NSIDs those without one got.
		for _, ns := range tg.Namespaces(s.NQN) {
			bs := ns.BlockSize
			if bs == 0 {
				bs = 512
			}
			desc := fmt.Sprintf("  namespace %d: %s %s, %d-byte blocks", ns.NSID, ns.Backend, ns.Size, bs)
			if ns.Path != "" {
				desc += ", " + ns.Path
			}
			fmt.Fprintln(w, desc)
		}
	}
	for i, l := range cfg.Listeners {
		host, port, _ := net.SplitHostPort(addrs[i].String())
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		switch l.Serve {
		case target.ServeDiscovery:
			fmt.Fprintf(w, "discovery on %s\n  nvme discover -t tcp -a %s -s %s\n  nvmftest discover -t tcp -a %s -s %s\n", addrs[i], host, port, host, port)
		default:
			fmt.Fprintf(w, "NVMe/TCP on %s\n", addrs[i])
			for _, s := range cfg.Subsystems {
				if len(s.Ports) > 0 && !containsPort(s.Ports, l.PortID) {
					continue
				}
				// A host-restricted subsystem needs the host NQN
				// given (-q): the host's default one is not allowed.
				qs := []string{""}
				if !s.AllowAnyHost && len(s.Hosts) > 0 {
					qs = qs[:0]
					for _, h := range s.Hosts {
						qs = append(qs, " -q "+h)
					}
				}
				for _, q := range qs {
					fmt.Fprintf(w, "  nvme connect -t tcp -a %s -s %s -n %s%s\n", host, port, s.NQN, q)
					fmt.Fprintf(w, "  nvmftest connect -t tcp -a %s -s %s -n %s%s\n", host, port, s.NQN, q)
				}
			}
		}
	}
	fmt.Fprintln(w, "serving until SIGINT or SIGTERM")
}

func containsPort(l []uint16, p uint16) bool {
	for _, x := range l {
		if x == p {
			return true
		}
	}
	return false
}
