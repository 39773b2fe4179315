// Package hostconform grades an NVMe/TCP host (initiator) the way suites
// grades a target: nvmftest runs a test controller, the host under test
// connects to it, and each check judges what the host does on the wire and
// how it reacts to what the controller does.
package hostconform

// Host control verbs and their arguments: the contract between
// `nvmftest conform-host --host-control CMD` and whatever drives the host
// under test (package control runs CMD as "CMD VERB key=value ..."; exit 0
// done, 3 unsupported, anything else failed). Checks ask only for these.
//
//	connect     addr=IP port=PORT nqn=SUBNQN hostnqn=NQN [hostid=UUID]
//	            [hdr_digest=true] [data_digest=true] [nr_io_queues=N]
//	            [queue_size=N] [kato=SECONDS] [ctrl_loss_tmo=SECONDS]
//	            [reconnect_delay=SECONDS] [dhchap_secret=DHHC-1:...]
//	            [dhchap_ctrl_secret=DHHC-1:...]
//	            Connect to the subsystem and return once the host's
//	            controller is live (its I/O queues connected). Prints the
//	            host's name for it (e.g. nvme3) if it has one.
//	disconnect  nqn=SUBNQN
//	            Disconnect every controller of the subsystem; return once
//	            gone.
//	io          nqn=SUBNQN nsid=N rw=read|write|randread|randwrite
//	            bs=BYTES size=BYTES [iodepth=N] [offset=BYTES]
//	            Run I/O on a connected namespace and return when it is
//	            done; exit non-zero if any I/O failed.
//	rescan      nqn=SUBNQN
//	            Make the host rescan the subsystem's namespaces.
//	discover    addr=IP port=PORT hostnqn=NQN [persistent=true]
//	            Read the discovery log (with persistent=true, keep the
//	            discovery controller connected until disconnect
//	            nqn=nqn.2014-08.org.nvmexpress.discovery).
//	connect-all addr=IP port=PORT hostnqn=NQN
//	            Discover and connect to every subsystem the log lists,
//	            following referrals, as `nvme connect-all` does.
//
// Booleans are "true"/"false"; sizes are byte counts. A control that cannot
// do something (an SPDK tool has no rescan) exits 3 and the checks that
// need it are skipped, saying so.
const (
	VerbConnect    = "connect"
	VerbDisconnect = "disconnect"
	VerbIO         = "io"
	VerbRescan     = "rescan"
	VerbDiscover   = "discover"
	VerbConnectAll = "connect-all"
)
