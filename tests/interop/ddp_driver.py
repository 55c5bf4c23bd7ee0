"""Pieces of the DDP driver scripts the Lightning tests write and run. Each driver is a self-contained
script (run as ``python driver.py``, its ranks re-run it), so these are pasted into its text, not imported."""

#: the start of a driver's ``__main__`` block (indented as its body): one thread, and the rendezvous store
#: served from the driver process
RENDEZVOUS = '''\
        torch.set_num_threads(1)
        if "MASTER_PORT" not in os.environ:  # the driver (rank 0); "popen"'s rank 1 re-runs this with it set
            # the rendezvous store is served from here, on a port bound now and held: Lightning's own
            # choice (bind port 0, close, rank 0 binds it after its ranks start) could be taken by
            # anything in between on a busy machine; as under torchrun, every rank is then a client
            store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port),
                              TORCHELASTIC_USE_AGENT_STORE="True")
'''
