package main

// The control endpoint of a running `nvmftest target` and its client,
// `nvmftest target ctl`.
//
// `nvmftest target --ctl-socket PATH` serves HTTP on a unix socket (mode
// 0600, so only the user who started the target can use it):
//
//	POST /v1/action  {"verb": "set-ana-state", "args": {"port": "1", ...}}
//	                 204 done, 501 unsupported verb, 400 bad arguments
//	GET  /v1/ports   [{"port_id":1,"address":"127.0.0.1:4420","down":false,"ana":{"1":"optimized"}}]
//
// `nvmftest target ctl --socket PATH VERB key=value...` takes the verbs of
// the conformance suites' control contract (set-ana-state, port-down,
// port-up, add-namespace, remove-namespace, resize-namespace, add-subsystem,
// remove-subsystem) and exits 3 for a verb the target does not know, so
// "nvmftest target ctl --socket PATH" is itself a --control command.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/suites"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/metrics"
)

// ctlEnv names the environment variable that gives ctl its socket.
const ctlEnv = "NVMFTEST_CTL_SOCKET"

// ctlVerbs lists the verbs, for --help and for ctl without a verb.
const ctlVerbs = `  set-ana-state     port=PORTID group=GRPID state=optimized|non-optimized|inaccessible|persistent-loss|change
  port-down         port=PORTID
  port-up           port=PORTID
  add-namespace     subnqn=NQN [nsid=N] [size=64MiB] [block_size=512] (no nsid: the lowest free one)
  remove-namespace  subnqn=NQN nsid=N
  resize-namespace  subnqn=NQN nsid=N size=SIZE (grow or shrink; hosts get a Namespace Attribute Changed event)
  add-subsystem     nqn=NQN [allow_any_host=true] [hosts=NQN,...]
  remove-subsystem  nqn=NQN
  ports             (prints the ports, their state and ANA states as JSON)
  stats             (prints per-controller, queue and namespace counters as JSON; "nvmftest target stats" shows a table)`

type ctlRequest struct {
	Verb string            `json:"verb"`
	Args map[string]string `json:"args"`
}

// serveTargetCtl serves the control endpoint for tg on a unix socket at
// path; the returned function stops it and removes the socket.
func serveTargetCtl(tg *target.Target, path string) (func(), error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	ctl := failover.LocalControl{T: tg}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/action", func(w http.ResponseWriter, r *http.Request) {
		var req ctlRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Verb == "" {
			http.Error(w, "body: want {\"verb\": ..., \"args\": {...}}", http.StatusBadRequest)
			return
		}
		err := ctl.Do(r.Context(), suites.Action{Verb: req.Verb, Args: req.Args})
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, suites.ErrUnsupported):
			http.Error(w, "unsupported verb "+req.Verb, http.StatusNotImplemented)
		default:
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("GET /v1/ports", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tg.Ports())
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tg.Stats())
	})
	stop := serveHTTP(ln, mux)
	return func() {
		stop()
		_ = os.Remove(path)
	}, nil
}

func ctlClient(path string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
}

// ctlExit carries ctl's exit status.
type ctlExit struct {
	err  error
	code int
}

func (e ctlExit) Error() string { return e.err.Error() }
func (e ctlExit) ExitCode() int { return e.code }

func newTargetCtlCmd() *cobra.Command {
	var sock string
	cmd := &cobra.Command{
		Use:   "ctl VERB [KEY=VALUE...]",
		Short: "Change a running nvmftest target: ANA state, ports, namespaces",
		Long: `Send one action to a running "nvmftest target --ctl-socket PATH".

Verbs (the conformance suites' control contract):
` + ctlVerbs + `

Exit status 3 means the target does not support the verb, so
"nvmftest target ctl --socket PATH" works as a --control command.`,
		Example: `  nvmftest target --ctl-socket /tmp/t.sock &
  nvmftest target ctl --socket /tmp/t.sock set-ana-state port=1 group=1 state=inaccessible
  nvmftest target ctl --socket /tmp/t.sock port-down port=1`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				// A first try without a verb gets the verbs, not
				// cobra's "requires at least 1 arg(s)".
				return usageError{errors.New("no verb; the verbs are:\n" + ctlVerbs)}
			}
			if sock == "" {
				sock = os.Getenv(ctlEnv)
			}
			if sock == "" {
				return usagef("no control socket (use --socket PATH or %s)", ctlEnv)
			}
			if err := checkCtlSocket(sock); err != nil {
				return err
			}
			c := ctlClient(sock)
			if args[0] == "ports" || args[0] == "stats" {
				resp, err := c.Get("http://target/v1/" + args[0])
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
				return err
			}
			a, err := control.ParseAction(args)
			if err != nil {
				return usagef("%v", err)
			}
			body, _ := json.Marshal(ctlRequest{Verb: a.Verb, Args: a.Args})
			resp, err := c.Post("http://target/v1/action", "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			switch resp.StatusCode {
			case http.StatusNoContent, http.StatusOK:
				return nil
			case http.StatusNotImplemented:
				return ctlExit{errors.New(strings.TrimSpace(string(msg))), suites.ExitUnsupported}
			default:
				return ctlExit{errors.New(strings.TrimSpace(string(msg))), 1}
			}
		},
	}
	cmd.Flags().StringVar(&sock, "socket", "", "control socket `PATH` of the running target (default $"+ctlEnv+")")
	return cmd
}

// checkCtlSocket says, in one line, what to do when there is no control
// socket at path (rather than an HTTP client's dial error).
func checkCtlSocket(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ctlExit{fmt.Errorf("no target control socket at %s: start the target with --ctl-socket %s", path, path), 1}
	case err != nil:
		return ctlExit{fmt.Errorf("target control socket %s: %v", path, err), 1}
	case fi.Mode()&os.ModeSocket == 0:
		return ctlExit{fmt.Errorf("%s is not a socket: start the target with --ctl-socket PATH and give that PATH", path), 1}
	}
	return nil
}

// serveTargetMetrics serves tg's Prometheus metrics on addr; it returns
// a function that stops the server and the address it listens on.
func serveTargetMetrics(tg *target.Target, addr string) (func(), string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(tg))
	return serveHTTP(ln, mux), ln.Addr().String(), nil
}

// serveHTTP serves h on ln until the returned stop, which gives requests
// in flight two seconds to finish.
func serveHTTP(ln net.Listener, h http.Handler) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// fetchStats reads the stats of the target serving the control socket.
func fetchStats(sock string) (target.Stats, []byte, error) {
	var st target.Stats
	if err := checkCtlSocket(sock); err != nil {
		return st, nil, err
	}
	resp, err := ctlClient(sock).Get("http://target/v1/stats")
	if err != nil {
		return st, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return st, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, nil, ctlExit{fmt.Errorf("stats: %s", strings.TrimSpace(string(raw))), 1}
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("stats: %v", err)
	}
	return st, raw, nil
}

func newTargetStatsCmd() *cobra.Command {
	var sock, format string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show a running nvmftest target's counters: controllers, queues, namespaces",
		Long: `Show what a running "nvmftest target --ctl-socket PATH" has served: per
namespace (since the target started), per live controller and I/O queue:
commands, bytes, errors by status and latency percentiles; refused
connects by reason. -o json prints the control socket's stats as they are.`,
		Example: `  nvmftest target stats --socket /tmp/t.sock
  nvmftest target stats --socket /tmp/t.sock -o json`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sock == "" {
				sock = os.Getenv(ctlEnv)
			}
			if sock == "" {
				return usagef("no control socket (use --socket PATH or %s)", ctlEnv)
			}
			if format != "table" && format != "json" {
				return usagef("-o %q: use table or json", format)
			}
			st, raw, err := fetchStats(sock)
			if err != nil {
				return err
			}
			if format == "json" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			writeStatsTable(cmd.OutOrStdout(), &st)
			return nil
		},
	}
	cmd.Flags().StringVar(&sock, "socket", "", "control socket `PATH` of the running target (default $"+ctlEnv+")")
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output `FORMAT`: table or json")
	return cmd
}

// writeStatsTable prints stats for people.
func writeStatsTable(w io.Writer, st *target.Stats) {
	fmt.Fprintf(w, "up %s; %d connection(s) open, %d accepted; %d association(s) served, %d I/O controller(s) live\n",
		st.Uptime, st.Connections, st.Accepted, st.Associations, len(st.Controllers))
	refused := uint64(0)
	for _, n := range st.RefusedConnects {
		refused += n
	}
	if refused > 0 {
		fmt.Fprintf(w, "refused connects: %s\n", reasonList(st.RefusedConnects))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "\tREADS\tWRITES\tOTHER\tREAD\tWRITTEN\tERRORS\tREAD p50/p99 µs\tWRITE p50/p99 µs\t"
	row := func(name string, s *target.IOStats) {
		lat := func(op string) string {
			l, ok := s.Latency[op]
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%d/%d", l.P50Us, l.P99Us)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t\n", name, s.Reads, s.Writes, s.Others,
			humanize.IBytes(s.BytesRead), humanize.IBytes(s.BytesWritten), s.Errors, lat("read"), lat("write"))
	}
	fmt.Fprintln(tw, "NAMESPACE"+header)
	for _, s := range st.Subsystems {
		for _, n := range s.Namespaces {
			row(fmt.Sprintf("%s/%d", s.NQN, n.NSID), &n.IOStats)
		}
	}
	row("total", &st.Total)
	tw.Flush()
	if len(st.Controllers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "CONTROLLER / QUEUE"+header)
		for _, c := range st.Controllers {
			row(fmt.Sprintf("cntlid %d %s %s from %s", c.CNTLID, c.Subsystem, c.Host, c.Remote), &c.IOStats)
			for _, q := range c.Queues {
				row(fmt.Sprintf("qid %d", q.QID), &q.IOStats)
			}
		}
		tw.Flush()
	}
	var errs []string
	for _, s := range st.Subsystems {
		for _, n := range s.Namespaces {
			if len(n.ErrorsByStatus) > 0 {
				errs = append(errs, fmt.Sprintf("  %s/%d: %s", s.NQN, n.NSID, reasonList(n.ErrorsByStatus)))
			}
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(w, "\nerrors by status:")
		fmt.Fprintln(w, strings.Join(errs, "\n"))
	}
}
