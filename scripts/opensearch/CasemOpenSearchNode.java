import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single OpenSearch node for casem's real-backend tests, run from the jars Maven fetched
 * (no distribution tarball). Usage: java CasemOpenSearchNode HOME HTTP_PORT TRANSPORT_PORT
 *
 * Modules of a distribution (HTTP over netty4, the common analyzers) are not found on the
 * classpath by the plugin service, so they are handed to Node's protected constructor as
 * classpath plugins, the way the test framework's MockNode does. Building the Node directly
 * also skips the production bootstrap checks (vm.max_map_count, heap size, ...), which a
 * shared test machine need not pass.
 */
public final class CasemOpenSearchNode {

    /** Node's plugin-taking constructor is protected: this subclass only exposes it. */
    static final class ClasspathPluginsNode extends Node {
        ClasspathPluginsNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: CasemOpenSearchNode HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));

        Settings settings = Settings.builder()
            .put("node.name", "casem-node")
            .put("cluster.name", "casem-test")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", args[1])
            .put("transport.port", args[2])
            .put("discovery.type", "single-node")
            // A shared machine's disk may be nearly full: never flip indices to read-only over it.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();

        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Map.of(), home.resolve("config"), () -> "casem-node");
        LogConfigurator.registerErrorListener();
        if (Files.exists(home.resolve("config").resolve("log4j2.properties"))) {
            LogConfigurator.configure(environment);
        } else {
            LogConfigurator.configureWithoutConfig(settings);
        }

        List<Class<? extends Plugin>> plugins = List.of(Netty4Plugin.class, CommonAnalysisPlugin.class);
        Node node = new ClasspathPluginsNode(environment, plugins);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "casem-node-shutdown"));
        try {
            node.start();
        } catch (Exception e) {
            // The node's non-daemon threads would keep a failed JVM alive: exit so start notices.
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("casem-opensearch: started, http on 127.0.0.1:" + args[1]);
        stopped.await(); // keep the JVM alive: the node's own threads may all be daemons
    }
}
