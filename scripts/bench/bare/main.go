// Command bare is the ceiling for scripts/bench/compare.sh: a Fiber app, configured like the relay's
// listener, that answers every POST 200 with a small JSON body and does nothing else.
package main

import (
	"flag"
	"log"

	"github.com/gofiber/fiber/v2"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "")
	flag.Parse()
	app := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 1 << 20})
	app.Post("/*", func(c *fiber.Ctx) error {
		c.Set("Content-Type", "application/json")
		return c.SendString(`{"accepted":1}`)
	})
	log.Fatal(app.Listen(*addr))
}
