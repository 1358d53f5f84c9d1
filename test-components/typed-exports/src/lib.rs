//! A guest for `trellis call`: it exports `trellis:typed/api` (see `wit/world.wit`), whose
//! functions take and return every kind of value the command line can write (strings,
//! records, lists, options, results, variants, enums, flags, integers, floats), a function
//! `version` at the level of its world, and a resource, which `trellis call` must refuse. It
//! exports no HTTP handler: the tests reach it only through `trellis call`.

use std::time::{Duration, Instant};

mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "trellis:typed/typed",
    });
}

use bindings::exports::trellis::typed::api::{
    Color, Guest, GuestCounter, Person, Perms, Shape,
};

struct Typed;

/// The resource behind `counter`.
struct Counter(u64);

impl GuestCounter for Counter {
    fn new(start: u64) -> Self {
        Counter(start)
    }

    fn get(&self) -> u64 {
        self.0
    }
}

fn person(name: &str, age: u8, email: Option<&str>) -> Person {
    Person {
        name: name.to_string(),
        age,
        email: email.map(str::to_string),
        tags: vec!["pioneer".to_string()],
    }
}

impl Guest for Typed {
    type Counter = Counter;

    fn say(words: String) -> String {
        format!("ferris says: {words}")
    }

    fn describe(p: Person) -> String {
        let mut line = format!("{} ({})", p.name, p.age);
        if let Some(email) = p.email {
            line.push_str(&format!(" <{email}>"));
        }
        if !p.tags.is_empty() {
            line.push_str(&format!(" [{}]", p.tags.join(", ")));
        }
        line
    }

    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Rect((w, h)) => w * h,
            Shape::Dot => 0.0,
        }
    }

    fn next_color(c: Color) -> Color {
        match c {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        }
    }

    fn sum(values: Vec<u64>) -> Result<u64, String> {
        values
            .iter()
            .try_fold(0u64, |total, v| total.checked_add(*v))
            .ok_or_else(|| "overflow".to_string())
    }

    fn scale(x: f32, factor: f64) -> f64 {
        f64::from(x) * factor
    }

    fn find(name: String) -> Option<Person> {
        match name.as_str() {
            "ada" => Some(person("ada", 36, Some("ada@example.org"))),
            "grace" => Some(person("grace", 85, None)),
            _ => None,
        }
    }

    fn count_bytes(data: Vec<u8>) -> u32 {
        u32::try_from(data.len()).unwrap_or(u32::MAX)
    }

    fn with_read(p: Perms) -> Perms {
        p | Perms::READ
    }

    fn divide(a: u64, b: u64) -> Result<u64, String> {
        a.checked_div(b)
            .ok_or_else(|| "division by zero".to_string())
    }

    fn fail(message: String) {
        panic!("{message}");
    }

    fn nothing() {}

    fn spin(ms: u32) {
        // On wasm32-wasip2 `Instant::now` reads wasi:clocks/monotonic-clock: this loop keeps
        // the instance busy until its execution deadline stops it.
        let deadline = Instant::now() + Duration::from_millis(u64::from(ms));
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }

    fn make_counter(start: u64) -> bindings::exports::trellis::typed::api::Counter {
        bindings::exports::trellis::typed::api::Counter::new(Counter(start))
    }
}

impl bindings::Guest for Typed {
    fn version() -> String {
        "typed-exports 0.1.0".to_string()
    }
}

bindings::export!(Typed with_types_in bindings);
