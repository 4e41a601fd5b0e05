from torrip.cli.main import entry

if __name__ == "__main__":  # not when multiprocessing imports it in a worker process
    entry()
