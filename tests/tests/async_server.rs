//! The async server keeps serving its other sessions while one session's storage call blocks:
//! long storage calls (open, listing, rename, mkdir, an upload's commit with its fsync) run in
//! `block_in_place`, so the tokio worker's other session tasks move to another thread
//! instead of waiting behind it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ftps_std::DataConnectionMode;
use ftps_std::server::{DirEntry, Download, FsError, Listing, LocalFs, Storage, Upload};
use ftps_tests::own_client::Client;
use ftps_tests::own_server::{Driver, OwnServer};

/// Local storage whose `make_dir` takes `delay` (a slow disk or network file system).
struct SlowMkdir {
    inner: LocalFs,
    delay: Duration,
}

impl Storage for SlowMkdir {
    fn change_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        self.inner.change_dir(path)
    }
    fn make_dir(&self, path: &[u8]) -> Result<Vec<u8>, FsError> {
        std::thread::sleep(self.delay);
        self.inner.make_dir(path)
    }
    fn remove_dir(&self, path: &[u8]) -> Result<(), FsError> {
        self.inner.remove_dir(path)
    }
    fn delete(&self, path: &[u8]) -> Result<(), FsError> {
        self.inner.delete(path)
    }
    fn rename(&self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        self.inner.rename(from, to)
    }
    fn entry(&self, path: &[u8]) -> Result<DirEntry, FsError> {
        self.inner.entry(path)
    }
    fn list(&self, path: &[u8]) -> Result<Listing, FsError> {
        self.inner.list(path)
    }
    fn open_read(&self, path: &[u8], offset: u64) -> Result<Download, FsError> {
        self.inner.open_read(path, offset)
    }
    fn open_write(
        &self,
        path: &[u8],
        offset: u64,
        append: bool,
    ) -> Result<Box<dyn Upload>, FsError> {
        self.inner.open_write(path, offset, append)
    }
    fn open_unique(&self, dir: &[u8]) -> Result<(Vec<u8>, Box<dyn Upload>), FsError> {
        self.inner.open_unique(dir)
    }
}

#[test]
fn a_blocked_storage_call_does_not_stall_other_sessions() {
    const OTHERS: usize = 6;
    let server = OwnServer::builder()
        .driver(Driver::Tokio)
        .without_implicit()
        .storage(|fs| {
            Arc::new(SlowMkdir {
                inner: fs,
                delay: Duration::from_secs(4),
            })
        })
        .start();
    let login = || {
        let mut client = Client::connect_on(
            Driver::Std,
            server.client_options(false, DataConnectionMode::Passive),
        )
        .expect("connect");
        client
            .login(server.user(), server.password())
            .expect("login");
        client
    };
    let mut others: Vec<Client> = (0..OTHERS).map(|_| login()).collect();
    let mut slow = login();

    let finished = Arc::new(Mutex::new(Vec::new()));
    let (started_tx, started_rx) = mpsc::channel();
    let slow_thread = {
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            slow.mkdir("slow").expect("MKD");
            finished.lock().unwrap().push(("mkdir", Instant::now()));
            slow.quit().unwrap();
        })
    };
    started_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300)); // the MKD is in the storage call now
    std::thread::scope(|scope| {
        for client in &mut others {
            let finished = Arc::clone(&finished);
            scope.spawn(move || {
                for _ in 0..5 {
                    client.pwd().expect("PWD");
                }
                finished.lock().unwrap().push(("pwd", Instant::now()));
            });
        }
    });
    slow_thread.join().unwrap();
    let finished = finished.lock().unwrap();
    let order: Vec<&str> = finished.iter().map(|(what, _)| *what).collect();
    let mut expected = vec!["pwd"; OTHERS];
    expected.push("mkdir");
    assert_eq!(
        order, expected,
        "every other session answered during the slow MKD"
    );
    for client in others {
        client.quit().unwrap();
    }
}
