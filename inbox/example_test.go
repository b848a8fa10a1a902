package inbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"contactd/config"
	"contactd/inbox"
	"contactd/workflow"

	"github.com/redis/go-redis/v9"
)

// The daemon wires a Reader to the store and runs it until it stops.
func Example() {
	cfg := config.Default()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr})
	store, err := workflow.NewStore(rdb, workflow.Options{KeyPrefix: cfg.Redis.KeyPrefix,
		NICPattern: cfg.Workflow.NICPattern, RequestTTL: cfg.Workflow.RequestTTL.D()})
	if err != nil {
		panic(err)
	}
	r, err := inbox.New(inbox.Params{Store: store, Config: cfg, Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	_ = r.Run(ctx) // returns when ctx is cancelled; mailbox errors are retried
	// r.LastPoll() tells /readyz how old the last good poll is.
}

// Read tells what a reply says without acting on it.
func ExampleRead() {
	raw := "From: Tom <tech@example.com>\r\n" +
		"To: contacts+cgrhbs63s5tiak6g47vuavxzs7a6anu2v@example.com\r\n" +
		"Subject: Re: Change of contacts\r\n\r\n" +
		"Oui !\r\n\r\nLe 2 mars 2026 à 10:00, Contacts a écrit :\r\n> Répondez OUI ou NON\r\n"
	r := inbox.Read([]byte(raw), "contacts@example.com")
	fmt.Println(r.Decision, r.TokenFrom, r.Language)
	// Output: accept address fr
}
