from torrip.cli.main import main

if __name__ == "__main__":  # not when multiprocessing imports it in a worker process
    raise SystemExit(main())
