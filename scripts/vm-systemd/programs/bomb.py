# Forks until the pids limit refuses (children wait): os.fork raises BlockingIOError in
# the main process -> runtime_error, the waiting children are killed with the run.
import os, time
while True:
    if os.fork() == 0:
        time.sleep(100)
        os._exit(0)
