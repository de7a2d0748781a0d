// Admin operations that HBase's thrift1 API (and so happybase) lacks: creating tables pre-split
// into regions. Run by `hbasectl create-tables` as a single-file Java program against the cached jars,
// one JVM for any number of tables (each replaces an existing table of the same name):
//   create-tables TABLE FAMILY:MAX_VERSIONS[,...] SPLIT_HEX[,...]|"" [TABLE FAMILIES SPLITS ...]
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptorBuilder;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.TableDescriptorBuilder;

public class TableAdmin {
  public static void main(String[] args) throws Exception {
    if (args.length < 4 || (args.length - 1) % 3 != 0 || !args[0].equals("create-tables")) {
      System.err.println("usage: TableAdmin create-tables TABLE FAMILY:MAX_VERSIONS[,...] SPLIT_HEX[,...]|'' ...");
      System.exit(2);
    }
    Configuration conf = HBaseConfiguration.create();
    try (Connection conn = ConnectionFactory.createConnection(conf); Admin admin = conn.getAdmin()) {
      for (int i = 1; i < args.length; i += 3) {
        createTable(admin, args[i], args[i + 1], args[i + 2]);
      }
    }
  }

  private static void createTable(Admin admin, String tableName, String families, String splitHex)
      throws Exception {
    TableName name = TableName.valueOf(tableName);
    TableDescriptorBuilder table = TableDescriptorBuilder.newBuilder(name);
    for (String fam : families.split(",")) {
      String[] parts = fam.split(":");
      table.setColumnFamily(ColumnFamilyDescriptorBuilder.newBuilder(parts[0].getBytes("UTF-8"))
          .setMaxVersions(Integer.parseInt(parts[1])).build());
    }
    List<byte[]> splits = new ArrayList<>();
    if (!splitHex.isEmpty()) {
      for (String hex : splitHex.split(",")) splits.add(hexToBytes(hex));
    }
    if (admin.tableExists(name)) {
      if (admin.isTableEnabled(name)) admin.disableTable(name);
      admin.deleteTable(name);
    }
    if (splits.isEmpty()) admin.createTable(table.build());
    else admin.createTable(table.build(), splits.toArray(new byte[0][]));
    System.out.println("created " + name + " with " + (splits.size() + 1) + " regions");
  }

  private static byte[] hexToBytes(String hex) {
    byte[] out = new byte[hex.length() / 2];
    for (int i = 0; i < out.length; i++) out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
    return out;
  }
}
